package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
	"github.com/voxgate/voxgate/switchboard"
)

// ClusterConfig joins this node to others behind Kamailio, sharing state
// in Redis (README: "More than one machine"). Empty Redis: one node alone.
type ClusterConfig struct {
	// Redis is the shared Redis: redis://[user:password@]host:port/db
	// (rediss:// for TLS).
	Redis string `yaml:"redis"`
	// NodeID names this node in Redis (node:<id>); default the host name.
	NodeID string `yaml:"node_id"`
	// Advertise is this node's SIP address as Kamailio's dispatcher list
	// names it (sip:10.0.0.1:5060): written to room:<name> for the rooms
	// this node hosts.
	Advertise string `yaml:"advertise"`
	// RoomTTL is how long a room's claim lives without renewal (default
	// 10s): after a node dies, its rooms move within this time.
	RoomTTL time.Duration `yaml:"room_ttl"`
}

// validate fills the defaults; a mistake names its field (below cluster).
func (c *ClusterConfig) validate() (string, error) {
	if c.Redis == "" {
		switch {
		case c.NodeID != "":
			return "node_id", errors.New("needs cluster.redis")
		case c.Advertise != "":
			return "advertise", errors.New("needs cluster.redis")
		}
		return "", nil
	}
	if !strings.HasPrefix(c.Redis, "redis://") && !strings.HasPrefix(c.Redis, "rediss://") {
		return "redis", fmt.Errorf("%q is not a redis:// or rediss:// URL", c.Redis)
	}
	r, err := store.OpenRedis(c.Redis) // parses the URL; connects only when used
	if err != nil {
		return "redis", err
	}
	r.Close()
	if c.NodeID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return "node_id", errors.New("required (the host name is unknown)")
		}
		c.NodeID = h
	}
	if !nodeIDRe.MatchString(c.NodeID) {
		// It goes into Redis keys and match patterns (outq:<id>:*): no
		// glob characters, colons or spaces.
		return "node_id", fmt.Errorf("%q: 1 to 64 of letters, digits, '.', '_', '-'", c.NodeID)
	}
	if c.Advertise == "" {
		return "advertise", errors.New("required with cluster.redis: this node's SIP address as Kamailio's dispatcher list names it (sip:10.0.0.1:5060)")
	}
	hp, ok := strings.CutPrefix(c.Advertise, "sip:")
	host, port, err := net.SplitHostPort(hp)
	if p, perr := strconv.Atoi(port); !ok || err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
		return "advertise", fmt.Errorf("%q is not sip:host:port", c.Advertise)
	}
	if c.RoomTTL == 0 {
		c.RoomTTL = 10 * time.Second
	}
	if c.RoomTTL < time.Second {
		return "room_ttl", errors.New("must be at least 1s")
	}
	return "", nil
}

// claimGrace keeps a claim made for a joining leg before the room has it.
const claimGrace = 5 * time.Second

// heartbeat is how often a node renews its liveness key and checks Redis.
const heartbeat = time.Second

// cluster is this node's part in a cluster: it keeps node:<id> alive,
// claims room:<name> for the rooms hosted here (renewed while they have
// participants, released when they empty or the node drains), and, when
// Redis comes back after an outage, writes this node's registrations and
// rooms again (a restarted Redis may have lost them).
// nodeIDRe is what a node id may be: a host name's characters.
var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type cluster struct {
	cfg      ClusterConfig
	r        *store.Redis
	log      *slog.Logger
	rooms    func() []api.RoomInfo // the rooms with participants here
	draining func() bool
	local    func() []sip.Binding // registrations made through this node
	// pages lists the users with a page open here (pages:<user>).
	pages func() []string
	// outbox is this node's webhook outbox in Redis (nil: no webhooks);
	// endpoints are the configured endpoints' names.
	outbox    *store.RedisOutbox
	endpoints []string

	kick     chan struct{}
	pageKick chan struct{}
	// published are the users whose pages:<user> names this node (only
	// the run goroutine, then close, touch it).
	published map[string]bool
	healthy   atomic.Bool
	lastErr   atomic.Pointer[error] // the last heartbeat's error (readyz never waits on mu)
	mu        sync.Mutex
	held      map[string]bool      // rooms this node's claim is on
	claimed   map[string]time.Time // when a join claimed a room (kept while the leg joins)
	nodes     atomic.Pointer[liveNodes]
	nodesAt   atomic.Int64      // when nodes was read (Unix ns)
	warned    map[string]string // room -> other host already logged

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func newCluster(cfg ClusterConfig, log *slog.Logger) (*cluster, error) {
	r, err := store.OpenRedis(cfg.Redis, store.WithRedisLogger(log))
	if err != nil {
		return nil, err
	}
	return &cluster{cfg: cfg, r: r, log: log.With("node", cfg.NodeID), kick: make(chan struct{}, 1), pageKick: make(chan struct{}, 1),
		published: map[string]bool{}, held: map[string]bool{}, claimed: map[string]time.Time{}, warned: map[string]string{}, done: make(chan struct{})}, nil
}

// start runs the heartbeat; the callbacks are set before.
func (c *cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.healthy.Store(true) // until the first check says otherwise
	go c.run(ctx)
}

func (c *cluster) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	renew, renewPages := time.Now(), time.Now()
	c.beat(ctx, true)
	c.syncPages(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.syncRooms(ctx)
		case <-c.pageKick:
			c.syncPages(ctx, false)
		case <-t.C:
			if c.beat(ctx, false) { // Redis is back: write every page again
				renewPages = time.Time{}
			}
			if time.Since(renew) >= c.cfg.RoomTTL/3 {
				renew = time.Now()
				c.syncRooms(ctx)
			}
			if time.Since(renewPages) >= pageTTL/3 {
				renewPages = time.Now()
				c.syncPages(ctx, true)
			}
		}
	}
}

// beat renews the liveness key and notices Redis going and coming back
// (back: true).
func (c *cluster) beat(ctx context.Context, first bool) (back bool) {
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := c.r.Heartbeat(bctx, c.cfg.NodeID, c.cfg.Advertise, 3*heartbeat)
	c.lastErr.Store(&err)
	was := c.healthy.Swap(err == nil)
	switch {
	case err != nil && (was || first):
		c.log.Error("cluster: Redis is unreachable: registrations through other nodes and room hosts are not shared until it is back; /readyz answers 503",
			"redis", redactURL(c.cfg.Redis), "error", err)
	case err == nil && first:
		c.log.Info("cluster: joined", "redis", redactURL(c.cfg.Redis), "advertise", c.cfg.Advertise)
		c.refreshNodes(bctx)
	case err == nil && !was:
		n := c.rewrite(bctx)
		c.log.Warn("cluster: Redis is back: this node's registrations, rooms and open pages written again", "registrations", n)
		c.syncRooms(ctx)
		back = true
	}
	if err == nil && !first {
		c.refreshNodes(bctx)
	}
	if err == nil {
		c.adoptWebhooks(bctx)
	}
	return back
}

// webhookOutbox is this node's webhook outbox in Redis, for eps.
func (c *cluster) webhookOutbox(eps []events.Endpoint) *store.RedisOutbox {
	c.outbox = c.r.Outbox(c.cfg.NodeID)
	for _, ep := range eps {
		c.endpoints = append(c.endpoints, ep.Name)
	}
	return c.outbox
}

// adoptWebhooks takes over the webhook deliveries left waiting by nodes
// whose liveness key has expired (killed, or stopped before they were
// sent): this node's sender delivers them.
func (c *cluster) adoptWebhooks(ctx context.Context) {
	if c.outbox == nil {
		return
	}
	took, err := c.outbox.Adopt(ctx, c.endpoints)
	if err != nil {
		c.log.Warn("cluster: the webhook deliveries of dead nodes cannot be taken over now", "error", err)
		return
	}
	for node, n := range took {
		c.log.Warn("cluster: took over the webhook deliveries a dead node left waiting", "dead_node", node, "deliveries", n)
	}
}

// liveNodes are the live nodes' SIP addresses and IP addresses, as the
// last heartbeat read them.
type liveNodes struct {
	addrs map[string]bool // sip:host:port
	ips   map[string]bool
}

// refreshNodes reads the live nodes (node:<id>) for trusted and live.
func (c *cluster) refreshNodes(ctx context.Context) {
	ns, err := c.r.Nodes(ctx)
	if err != nil {
		return // beat logs Redis going away; the last list stays
	}
	l := &liveNodes{addrs: map[string]bool{}, ips: map[string]bool{}}
	for _, addr := range ns {
		l.addrs[addr] = true
		host, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "sip:"))
		if err != nil {
			continue
		}
		if _, err := netip.ParseAddr(host); err == nil {
			l.ips[host] = true
			continue
		}
		ips, _ := net.DefaultResolver.LookupHost(ctx, host) // a node named by its host name
		for _, ip := range ips {
			l.ips[ip] = true
		}
	}
	c.nodes.Store(l)
	c.nodesAt.Store(time.Now().UnixNano())
}

// live reports whether the live nodes satisfy has; on a miss it reads them
// again (at most every 50 ms: a flood of cascade headers from strangers
// costs Redis little), so a node that joined since the last heartbeat is
// known at once.
func (c *cluster) live(has func(*liveNodes) bool) bool {
	if l := c.nodes.Load(); l != nil && has(l) {
		return true
	}
	if time.Since(time.Unix(0, c.nodesAt.Load())) < 50*time.Millisecond {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.refreshNodes(ctx)
	l := c.nodes.Load()
	return l != nil && has(l)
}

// trusted reports whether ip is a live node's: only from one is a cascade
// leg (sip.CascadeHeader) believed.
func (c *cluster) trusted(ip string) bool {
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = a.Unmap().String()
	}
	return c.live(func(l *liveNodes) bool { return l.ips[ip] })
}

// hostOf claims room for this node when no node holds it, and returns the
// SIP address of the live node that hosts it otherwise ("" : here). Without
// Redis, or when the holder is not alive (killed, its claim not expired
// yet), the room is here.
func (c *cluster) hostOf(ctx context.Context, room string) string {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	host, err := c.r.ClaimRoom(cctx, room, c.cfg.Advertise, c.cfg.RoomTTL)
	switch {
	case errors.Is(err, store.ErrRoomElsewhere):
		if !c.live(func(l *liveNodes) bool { return l.addrs[host] }) {
			c.log.Warn("cluster: the node holding the room is not alive: the room starts here", "room", room, "host", host)
			return ""
		}
		return host
	case err != nil:
		c.log.Warn("cluster: who hosts the room is not known (Redis): it starts here", "room", room, "error", err)
		return ""
	}
	c.mu.Lock()
	c.held[room], c.claimed[room] = true, time.Now()
	c.mu.Unlock()
	return ""
}

// rewrite saves this node's registrations again (a restarted Redis may
// have none).
func (c *cluster) rewrite(ctx context.Context) int {
	if c.local == nil {
		return 0
	}
	n := 0
	for _, b := range c.local() {
		if err := c.r.SaveBinding(ctx, storeBinding(b, c.cfg.Advertise)); err == nil {
			n++
		}
	}
	c.mu.Lock()
	clear(c.held) // claim again, whatever Redis kept
	c.mu.Unlock()
	return n
}

// syncRooms claims or renews the rooms hosted here and releases the ones
// that emptied; a draining node gives up all of them, so the next call to
// a room starts it on another node.
func (c *cluster) syncRooms(ctx context.Context) {
	if c.rooms == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	live := map[string]bool{}
	infos := map[string]api.RoomInfo{}
	if c.draining == nil || !c.draining() {
		for _, r := range c.rooms() {
			live[r.Name], infos[r.Name] = true, r
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range live {
		host, err := c.r.ClaimRoom(sctx, name, c.cfg.Advertise, c.cfg.RoomTTL)
		switch {
		case errors.Is(err, store.ErrRoomElsewhere):
			if c.warned[name] != host {
				c.warned[name] = host
				c.log.Warn("cluster: room is hosted on another node too: its participants here do not hear those there (calls reached this node directly, or the other node died and its claim has not expired yet)",
					"room", name, "host", host)
			}
			delete(c.held, name)
		case err != nil:
			return // Redis is away: beat logs it
		default:
			if !c.held[name] {
				c.log.Info("cluster: hosting room", "room", name)
			}
			c.held[name] = true
			delete(c.warned, name)
		}
	}
	for name := range c.held {
		if live[name] || time.Since(c.claimed[name]) < claimGrace {
			continue // a join's claim is kept while its leg joins
		}
		delete(c.claimed, name)
		if err := c.r.ReleaseRoom(sctx, name, c.cfg.Advertise); err != nil {
			return
		}
		delete(c.held, name)
		c.log.Info("cluster: room released", "room", name)
	}
	for name := range c.warned {
		if !live[name] {
			delete(c.warned, name)
		}
	}
	// What the other nodes list (GET /api/v1/rooms): the rooms held here,
	// with their participants; it lives as long as a claim.
	summaries := map[string]store.RoomSummary{}
	for name := range c.held {
		if r, ok := infos[name]; ok {
			summaries[name] = store.RoomSummary{Participants: len(r.Legs), Rate: r.Rate, Locked: r.Locked, Max: r.Max, Recording: r.Recording}
		}
	}
	if err := c.r.SetNodeRooms(sctx, c.cfg.NodeID, summaries, c.cfg.RoomTTL); err != nil {
		c.log.Debug("cluster: this node's room list was not written", "error", err)
	}
}

// roomEvent claims a room at once when someone joins it (and releases it
// soon after the last one leaves) rather than at the next renewal.
func (c *cluster) roomEvent(e bridge.Event, _ string) {
	if e.Type == "joined" || e.Type == "left" || e.Type == "kicked" {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// ready is the "redis" readiness check.
func (c *cluster) ready(context.Context) error {
	if c.healthy.Load() {
		return nil
	}
	var err error
	if p := c.lastErr.Load(); p != nil {
		err = *p
	}
	return fmt.Errorf("unreachable: %v", err)
}

// close releases this node's rooms and liveness key and stops. Idempotent.
func (c *cluster) close() {
	if c == nil {
		return
	}
	c.closeOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.mu.Lock()
		for name := range c.held {
			_ = c.r.ReleaseRoom(ctx, name, c.cfg.Advertise)
		}
		c.mu.Unlock()
		_ = c.r.SetNodeRooms(ctx, c.cfg.NodeID, nil, time.Second)
		for user := range c.published {
			_ = c.r.DropPage(ctx, user, c.cfg.Advertise)
		}
		_ = c.r.Leave(ctx, c.cfg.NodeID)
		_ = c.r.Close()
	})
}

// bindings returns user's bindings made through other nodes (not those
// this node holds: the caller has them, with their qualify state), and the
// live nodes that hold user's bindings over WebSocket: a browser's SIP
// connection ends on one node, so only that node reaches it (a call is
// forwarded to it, sip.ForwardHeader).
func (c *cluster) bindings(user string, here []sip.Binding) (out []sip.Binding, forward []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	bs, err := c.r.Bindings(ctx, user, time.Now())
	if err != nil {
		c.log.Warn("cluster: registrations through other nodes are not known (Redis)", "user", user, "error", err)
		return nil, nil
	}
	for _, b := range bs {
		mine := false
		for _, h := range here {
			mine = mine || h.Contact == b.Contact
		}
		switch {
		case mine:
		case strings.HasPrefix(strings.ToUpper(b.Transport), "WS"):
			if b.Node == "" || b.Node == c.cfg.Advertise || slices.Contains(forward, b.Node) {
				continue // an old binding without its node, or one this node lost
			}
			if !c.live(func(l *liveNodes) bool { return l.addrs[b.Node] }) {
				continue // its node died: its WebSocket went with it
			}
			forward = append(forward, b.Node)
		default:
			out = append(out, sipBinding(b))
		}
	}
	return out, forward
}

// redisLocations keeps the registrar's bindings in Redis, shared by the
// nodes, each marked with the node that took it (node: its advertised
// SIP address).
type redisLocations struct {
	r    *store.Redis
	node string
}

func (l redisLocations) SaveBinding(ctx context.Context, b sip.Binding) error {
	return l.r.SaveBinding(ctx, storeBinding(b, l.node))
}

func (l redisLocations) DeleteBinding(ctx context.Context, aor, contact string) error {
	return l.r.DeleteBinding(ctx, aor, contact)
}

func (l redisLocations) LoadBindings(context.Context, time.Time) ([]sip.Binding, error) {
	return nil, nil // read per call (cluster.bindings), not copied at start
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return u
}

// chainRoomEvents tells both observers (either may be nil) of each room event.
func chainRoomEvents(a, b func(bridge.Event, string)) func(bridge.Event, string) {
	if a == nil {
		return b
	}
	return func(e bridge.Event, name string) {
		a(e, name)
		b(e, name)
	}
}

// roomsWithLegs lists the rooms with participants on sb.
func roomsWithLegs(sb *switchboard.Switchboard) func() []api.RoomInfo {
	return func() []api.RoomInfo {
		var out []api.RoomInfo
		for _, r := range sb.Rooms() {
			if len(r.Legs) > 0 {
				out = append(out, r)
			}
		}
		return out
	}
}

// clusterRooms tells the switchboard where a room is hosted and places the
// cascade leg to the host (switchboard.Cluster).
type clusterRooms struct {
	cl  *cluster
	srv *sip.Server
}

func (r clusterRooms) RoomElsewhere(ctx context.Context, room switchboard.CascadeRoom) switchboard.Device {
	host := r.cl.hostOf(ctx, room.Name)
	if host == "" || host == r.cl.cfg.Advertise {
		return nil
	}
	cs := sip.Cascade{Room: room.Name, Moderator: room.Moderator, WaitForModerator: room.WaitForModerator, EndWithModerator: room.EndWithModerator, View: room.View}
	return func(ctx context.Context, from string) (switchboard.Leg, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second) // the host answers at once
		defer cancel()
		return leg(r.srv.DialNode(dctx, host, cs, from))
	}
}

var _ switchboard.Cluster = clusterRooms{}
