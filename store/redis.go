package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps what the nodes of a cluster share: registrations (so a phone
// registered through any node is reachable from every node), which node
// hosts which room, and which nodes are alive. Call records stay in each
// node's SQLite: they are written on the media-free path of one call, read
// by that node's API, and need no coordination.
//
// Keys (all under the configured prefix, "" by default so that Kamailio's
// ndb_redis reads room:<number> as written):
//
//	loc:<aor>      hash: contact -> binding JSON; the key expires with the last binding
//	room:<name>    the SIP address of the node hosting the room; expires unless renewed
//	node:<id>      the node's SIP address; expires unless renewed (liveness)
//	pages:<user>, rooms:<node>: see redis_cluster.go
type Redis struct {
	c      *redis.Client
	prefix string
	log    *slog.Logger
}

// ErrRoomElsewhere is returned by ClaimRoom when another node hosts the room.
var ErrRoomElsewhere = errors.New("room hosted on another node")

// RedisOption configures OpenRedis.
type RedisOption func(*Redis)

// WithRedisLogger sets the logger (default slog.Default()).
func WithRedisLogger(l *slog.Logger) RedisOption { return func(r *Redis) { r.log = l } }

// WithRedisPrefix puts every key under prefix (default none).
func WithRedisPrefix(p string) RedisOption { return func(r *Redis) { r.prefix = p } }

// OpenRedis connects to the Redis at url (redis://[user:password@]host:port/db,
// or rediss:// for TLS). It does not wait for Redis to answer: a node
// starts while Redis is away, and Ping tells whether it answers.
func OpenRedis(url string, opts ...RedisOption) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: redis url: %w", err)
	}
	// Short timeouts: a call waits on these, and a Redis that does not
	// answer within a second is treated as gone.
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = time.Second, time.Second, time.Second
	o.MaxRetries = 1
	r := &Redis{c: redis.NewClient(o), log: slog.Default()}
	for _, opt := range opts {
		opt(r)
	}
	quietOnce.Do(func() { redis.SetLogger(debugLogger{r.log}) })
	return r, nil
}

// quietOnce sends the driver's own messages (one per failed dial while
// Redis is away) to the debug level: the node says once, clearly, that
// Redis is unreachable and again when it is back.
var quietOnce sync.Once

type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "store: redis driver: "+fmt.Sprintf(format, v...))
}

// Close closes the connections. Idempotent.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func (r *Redis) key(kind, name string) string { return r.prefix + kind + ":" + name }

// saveBinding sets one hash field and makes the key live at least until
// the binding expires (per-field expiry needs Redis 7.4; Debian 12 has 7.0).
var saveBinding = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[3])
if ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1`)

// SaveBinding adds or replaces the binding of (AOR, Contact).
func (r *Redis) SaveBinding(ctx context.Context, b Binding) error {
	if b.AOR == "" || b.Contact == "" {
		return errors.New("store: binding without an address-of-record or a contact")
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	ttl := time.Until(b.Expires).Milliseconds()
	if ttl <= 0 {
		return r.DeleteBinding(ctx, b.AOR, b.Contact)
	}
	if err := saveBinding.Run(ctx, r.c, []string{r.key("loc", b.AOR)}, b.Contact, data, ttl).Err(); err != nil {
		return fmt.Errorf("store: redis: save binding %s %s: %w", b.AOR, b.Contact, err)
	}
	return nil
}

// DeleteBinding removes the binding of (aor, contact); contact "" removes
// every binding of aor.
func (r *Redis) DeleteBinding(ctx context.Context, aor, contact string) error {
	var err error
	if contact == "" {
		err = r.c.Del(ctx, r.key("loc", aor)).Err()
	} else {
		err = r.c.HDel(ctx, r.key("loc", aor), contact).Err()
	}
	if err != nil {
		return fmt.Errorf("store: redis: delete binding %s %s: %w", aor, contact, err)
	}
	return nil
}

// Bindings returns aor's bindings unexpired at now, from every node.
func (r *Redis) Bindings(ctx context.Context, aor string, now time.Time) ([]Binding, error) {
	m, err := r.c.HGetAll(ctx, r.key("loc", aor)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: bindings of %s: %w", aor, err)
	}
	var out []Binding
	for contact, data := range m {
		var b Binding
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			r.log.Warn("store: redis: a binding that does not parse is ignored", "user", aor, "contact", contact, "error", err)
			continue
		}
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out, nil
}

// LoadBindings returns nothing: with Redis the bindings are read when a
// call needs them (Bindings), not copied into each node at start.
func (r *Redis) LoadBindings(context.Context, time.Time) ([]Binding, error) { return nil, nil }

// claimRoom sets the room's key to this node when nobody holds it (SET NX
// with an expiry) and renews it when this node holds it; it returns the
// holder.
var claimRoom = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`)

// ClaimRoom makes node (its SIP address) the host of room for ttl, or
// renews its claim. When another node holds the room it returns that node
// and ErrRoomElsewhere.
func (r *Redis) ClaimRoom(ctx context.Context, room, node string, ttl time.Duration) (string, error) {
	v, err := claimRoom.Run(ctx, r.c, []string{r.key("room", room)}, node, ttl.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("store: redis: claim room %s: %w", room, err)
	}
	if v != node {
		return v, ErrRoomElsewhere
	}
	return v, nil
}

// releaseRoom deletes the key only if it still names this node.
var releaseRoom = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// ReleaseRoom gives up node's claim on room (another node's is kept).
func (r *Redis) ReleaseRoom(ctx context.Context, room, node string) error {
	if err := releaseRoom.Run(ctx, r.c, []string{r.key("room", room)}, node).Err(); err != nil {
		return fmt.Errorf("store: redis: release room %s: %w", room, err)
	}
	return nil
}

// RoomHost returns the SIP address of the node hosting room ("" if none).
func (r *Redis) RoomHost(ctx context.Context, room string) (string, error) {
	v, err := r.c.Get(ctx, r.key("room", room)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: redis: room %s: %w", room, err)
	}
	return v, nil
}

// Heartbeat marks node id (at its SIP address) alive for ttl.
func (r *Redis) Heartbeat(ctx context.Context, id, addr string, ttl time.Duration) error {
	if err := r.c.Set(ctx, r.key("node", id), addr, ttl).Err(); err != nil {
		return fmt.Errorf("store: redis: heartbeat: %w", err)
	}
	return nil
}

// Leave removes node id's liveness key (a clean stop).
func (r *Redis) Leave(ctx context.Context, id string) error {
	return r.c.Del(ctx, r.key("node", id)).Err()
}

// Nodes returns the live nodes: id -> SIP address.
func (r *Redis) Nodes(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	iter := r.c.Scan(ctx, 0, r.key("node", "*"), 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := r.c.Get(ctx, k).Result()
		if err != nil {
			continue // expired between the scan and the read
		}
		out[strings.TrimPrefix(k, r.key("node", ""))] = v
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("store: redis: nodes: %w", err)
	}
	return out, nil
}

// Publish sends msg on channel (pub/sub: nothing is kept) and returns how
// many subscribers got it.
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) (int64, error) {
	n, err := r.c.Publish(ctx, r.prefix+channel, msg).Result()
	if err != nil {
		return 0, fmt.Errorf("store: redis: publish %s: %w", channel, err)
	}
	return n, nil
}

// Subscribe calls f with each message published on channel, in order, on
// one goroutine, until stop is called (ctx bounds only the wait for Redis
// to confirm the subscription). It returns once Redis has confirmed it: a
// message published after that reaches f. The driver subscribes again after a lost connection (what was
// published meanwhile is lost).
func (r *Redis) Subscribe(ctx context.Context, channel string, f func([]byte)) (stop func(), err error) {
	ps := r.c.Subscribe(ctx, r.prefix+channel)
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("store: redis: subscribe %s: %w", channel, err)
	}
	ch := ps.Channel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			f([]byte(m.Payload))
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ps.Close()
			<-done
		})
	}
	return stop, nil
}
