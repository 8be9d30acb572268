package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOutbox is one node's webhook outbox in the cluster's Redis, so that
// another node delivers what a dead node left (Adopt). Delivery is at
// least once: a node taken for dead that was only cut off from Redis may
// send an entry the adopter sends too (the event id lets a receiver drop
// the second).
//
// Keys (under the Redis prefix):
//
//	outbox:<id>          the entry (JSON); deleted once delivered or dropped
//	outq:<node>:<ep>     sorted set: the node's waiting entries for endpoint ep, by next try (ms)
//	outbox-nodes         set: the nodes that may have waiting entries
//
// A node's outbox is its own while its liveness key (node:<id>, renewed by
// its heartbeat) lives; once the key has expired, any live node may take
// the waiting entries over, atomically, into its own queues.
type RedisOutbox struct {
	r    *Redis
	node string
	keep time.Duration
}

// entryTTL bounds how long an entry is kept in Redis if nobody delivers or
// drops it (its endpoint left every node's config).
const entryTTL = 30 * 24 * time.Hour

// Outbox returns node's webhook outbox.
func (r *Redis) Outbox(node string) *RedisOutbox {
	return &RedisOutbox{r: r, node: node, keep: entryTTL}
}

func (o *RedisOutbox) queue(node, endpoint string) string {
	return o.r.key("outq", node+":"+endpoint)
}

func (o *RedisOutbox) nodesKey() string { return o.r.prefix + "outbox-nodes" }

// endpointOf is an entry's endpoint, from its id (<event id>@<endpoint>).
func endpointOf(id string) string {
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// enqueue stores an entry unless its id is there already, and queues it.
var enqueue = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[5])
end
return 1`)

// Enqueue adds entries to this node's queues; an entry whose ID is there
// already is ignored.
func (o *RedisOutbox) Enqueue(ctx context.Context, entries ...OutboxEntry) error {
	now := time.Now()
	pipe := o.r.c.Pipeline()
	for _, e := range entries {
		if e.ID == "" {
			return errors.New("store: outbox entry without an id")
		}
		if e.Created.IsZero() {
			e.Created = now
		}
		if e.NextTry.IsZero() {
			e.NextTry = e.Created
		}
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		enqueue.Eval(ctx, pipe, []string{o.r.key("outbox", e.ID), o.queue(o.node, e.Endpoint), o.nodesKey()},
			data, e.NextTry.UnixMilli(), o.keep.Milliseconds(), e.ID, o.node)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store: redis: enqueue: %w", err)
	}
	return nil
}

// DueFor lists endpoint's entries in this node's queue with NextTry <= now,
// oldest first, at most limit (<= 0: 100).
func (o *RedisOutbox) DueFor(ctx context.Context, endpoint string, now time.Time, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	q := o.queue(o.node, endpoint)
	ids, err := o.r.c.ZRangeByScore(ctx, q, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: due: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = o.r.key("outbox", id)
	}
	vals, err := o.r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: due: %w", err)
	}
	var out []OutboxEntry
	for i, v := range vals {
		s, ok := v.(string)
		var e OutboxEntry
		if !ok || json.Unmarshal([]byte(s), &e) != nil {
			// Delivered or dropped by a node that had it before (it was
			// taken for dead), or expired: nothing left to send.
			o.r.c.ZRem(ctx, q, ids[i])
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// DropOthers gives up this node's waiting entries whose endpoint is not in
// keep and reports how many.
func (o *RedisOutbox) DropOthers(ctx context.Context, keep []string, reason string) (int, error) {
	prefix := o.queue(o.node, "")
	n := 0
	iter := o.r.c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		q := iter.Val()
		ep := strings.TrimPrefix(q, prefix)
		if contains(keep, ep) {
			continue
		}
		ids, err := o.r.c.ZRange(ctx, q, 0, -1).Result()
		if err != nil {
			return n, fmt.Errorf("store: redis: outbox drop others: %w", err)
		}
		for _, id := range ids {
			if err := o.Drop(ctx, id, reason); err == nil {
				n++
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("store: redis: outbox drop others: %w", err)
	}
	return n, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// finish deletes an entry and takes it out of this node's queue.
var finish = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`)

// Delivered removes the entry: it is sent. Removing it again is not an
// error.
func (o *RedisOutbox) Delivered(ctx context.Context, id string, _ time.Time) error {
	if err := finish.Run(ctx, o.r.c, []string{o.r.key("outbox", id), o.queue(o.node, endpointOf(id))}, id).Err(); err != nil {
		return fmt.Errorf("store: redis: outbox delivered %s: %w", id, err)
	}
	return nil
}

// Drop removes the entry: it is given up (the caller logs why).
func (o *RedisOutbox) Drop(ctx context.Context, id, _ string) error {
	if err := finish.Run(ctx, o.r.c, []string{o.r.key("outbox", id), o.queue(o.node, endpointOf(id))}, id).Err(); err != nil {
		return fmt.Errorf("store: redis: outbox drop %s: %w", id, err)
	}
	return nil
}

// retry records an attempt in the entry and moves its next try, if it is
// still there and still in this node's queue (another node may have taken
// it over meanwhile).
var retry = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`)

// Retry records a failed attempt: the attempt count so far, when to try
// next and the error.
func (o *RedisOutbox) Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	key := o.r.key("outbox", id)
	s, err := o.r.c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: redis: outbox retry %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: redis: outbox retry %s: %w", id, err)
	}
	var e OutboxEntry
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return fmt.Errorf("store: redis: outbox retry %s: %w", id, err)
	}
	e.Attempts, e.NextTry, e.LastError = attempts, next, lastErr
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := retry.Run(ctx, o.r.c, []string{key, o.queue(o.node, e.Endpoint)}, id, data, next.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("store: redis: outbox retry %s: %w", id, err)
	}
	return nil
}

// adopt moves a dead node's queue for one endpoint into this node's, due
// now, unless the node is alive (its liveness key is there).
var adopt = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local m = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(m) do redis.call('ZADD', KEYS[3], ARGV[1], id) end
redis.call('DEL', KEYS[2])
return #m`)

// Adopt takes over the waiting entries, for endpoints, of every node whose
// liveness key has expired (killed, or stopped with deliveries left), into
// this node's queues, due at once. It returns how many it took, by node.
// It also lists this node among those with queues (so that its retries are
// taken over if it dies): run it with the heartbeat.
func (o *RedisOutbox) Adopt(ctx context.Context, endpoints []string) (map[string]int, error) {
	if err := o.r.c.SAdd(ctx, o.nodesKey(), o.node).Err(); err != nil {
		return nil, fmt.Errorf("store: redis: outbox nodes: %w", err)
	}
	nodes, err := o.r.c.SMembers(ctx, o.nodesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: outbox nodes: %w", err)
	}
	now := time.Now().UnixMilli()
	var took map[string]int
	for _, n := range nodes {
		if n == o.node {
			continue
		}
		alive, moved := false, 0
		for _, ep := range endpoints {
			c, err := adopt.Run(ctx, o.r.c, []string{o.r.key("node", n), o.queue(n, ep), o.queue(o.node, ep)}, now).Int()
			if err != nil {
				return took, fmt.Errorf("store: redis: outbox of %s: %w", n, err)
			}
			if c < 0 {
				alive = true
				break
			}
			moved += c
		}
		if alive {
			continue
		}
		// Its queues for endpoints this node lacks (nodes share their
		// webhooks config) expire with their last entry.
		o.r.c.SRem(ctx, o.nodesKey(), n)
		if moved > 0 {
			if took == nil {
				took = map[string]int{}
			}
			took[n] = moved
		}
	}
	return took, nil
}
