package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/webclient"
)

// Cluster settings are checked when the config is read; a mistake names
// the file, the line and the field.
func TestClusterConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"not a redis url", "cluster:\n  redis: \"http://127.0.0.1:6379\"\n  advertise: \"sip:10.0.0.1:5060\"\n", 2, "cluster.redis: \"http://127.0.0.1:6379\" is not a redis:// or rediss:// URL"},
		{"bad redis url", "cluster:\n  redis: \"redis://h:port/x\"\n  advertise: \"sip:10.0.0.1:5060\"\n", 2, "cluster.redis"},
		{"no advertise", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  node_id: a\n", 1, "cluster.advertise: required with cluster.redis"},
		{"bad advertise", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  advertise: \"10.0.0.1:5060\"\n", 3, "cluster.advertise: \"10.0.0.1:5060\" is not sip:host:port"},
		{"advertise without port", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  advertise: \"sip:10.0.0.1\"\n", 3, "cluster.advertise"},
		{"bad node id", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  node_id: \"a:b\"\n  advertise: \"sip:10.0.0.1:5060\"\n", 3, "cluster.node_id"},
		{"short room ttl", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  advertise: \"sip:10.0.0.1:5060\"\n  room_ttl: 100ms\n", 4, "cluster.room_ttl: must be at least 1s"},
		{"glob in node id", "cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  node_id: \"a[b\"\n  advertise: \"sip:10.0.0.1:5060\"\n", 3, "cluster.node_id"},
		{"node id without redis", "cluster:\n  node_id: a\n", 2, "cluster.node_id: needs cluster.redis"},
		{"unknown field", "cluster:\n  redis_url: x\n", 2, "cluster.redis_url: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("my.yaml", []byte(tc.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if ce.File != "my.yaml" || ce.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q (line %d), want my.yaml line %d with %q", err, ce.Line, tc.line, tc.want)
			}
		})
	}
	cfg, err := parseConfig("my.yaml", []byte("cluster:\n  redis: \"redis://127.0.0.1:6379/0\"\n  advertise: \"sip:10.0.0.1:5060\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.NodeID == "" || cfg.Cluster.RoomTTL != 10*time.Second {
		t.Fatalf("defaults not filled: %+v", cfg.Cluster)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                "redis://127.0.0.1:6379/0",
		"redis://:s3cret@10.0.0.5:6379/0":         "redis://***@10.0.0.5:6379/0",
		"rediss://user:p@ss@redis.example:6380/1": "rediss://***@redis.example:6380/1",
	} {
		if got := redactURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// With Redis away from the start, a node still starts; /readyz's check
// says why, and closing does not hang.
func TestClusterRedisAway(t *testing.T) {
	c, err := newCluster(ClusterConfig{Redis: "redis://127.0.0.1:1/0", NodeID: "a", Advertise: "sip:127.0.0.1:5060", RoomTTL: 3 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.rooms = func() []api.RoomInfo { return []api.RoomInfo{{Name: "800", Legs: []api.LegInfo{{ID: "l1"}}}} }
	c.start()
	if !waitUntil(5*time.Second, func() bool { return c.ready(context.Background()) != nil }) {
		t.Fatal("readiness is fine with Redis unreachable")
	}
	if err := c.ready(context.Background()); !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("readiness error %q", err)
	}
	done := make(chan struct{})
	go func() { c.close(); c.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close hangs with Redis away")
	}
}

// A draining node's rooms take no new leg from a page either: the join is
// ended with the reason (a SIP call gets 503, TestSIGTERMDrainsCalls).
func TestDrainingRefusesPageJoin(t *testing.T) {
	g := startGateway(t, func(cfg *Config) {
		cfg.Web.ICEIPs = []string{"127.0.0.1"}
		cfg.Web.LoopbackICE = true
	})
	var link webclient.GuestLink
	if code := g.api(t, "POST", "/api/v1/rooms/002/guest-links", `{"ttl_seconds":600}`, &link); code != 201 {
		t.Fatalf("guest link: %d", code)
	}
	u, err := url.Parse(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	body, _ := json.Marshal(map[string]string{"guest": u.Query().Get("guest"), "name": "Bob Guest"})
	res, err := hc.Post(g.web+"/api/v1/login", "application/json", strings.NewReader(string(body)))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("guest sign-in: %v %v", res, err)
	}
	res.Body.Close()
	h := http.Header{"Origin": {g.web}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	page := newGuestPage(t, ws)
	g.app.draining.Store(true) // as SIGTERM does
	offer, err := page.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := page.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	page.send(webclient.Message{Type: "join", ID: "c1", Room: "002", SDP: offer.SDP})
	ended := func() string {
		page.mu.Lock()
		defer page.mu.Unlock()
		return strings.Join(page.errs, "; ")
	}
	if !waitUntil(5*time.Second, func() bool { return strings.Contains(ended(), "draining") }) {
		t.Fatalf("a page's join while draining: %q", ended())
	}
	if code := g.api(t, "GET", "/api/v1/rooms/002", "", nil); code != 404 {
		t.Fatalf("room 002 exists (%d) after a refused join", code)
	}
}

// Whatever the cluster section holds, reading it fails with a config error
// or gives settings a node can use (never a panic).
func FuzzClusterConfig(f *testing.F) {
	f.Add("redis://127.0.0.1:6379/0", "gw1", "sip:10.0.0.1:5060", "10s")
	f.Add("rediss://:pw@h:1/2", "", "sip:[::1]:5060", "1s")
	f.Add("redis://h:port/x", "a:b", "sip:h", "0s")
	f.Add("", "n", "", "")
	f.Fuzz(func(t *testing.T, redis, node, advertise, ttl string) {
		y, _ := json.Marshal(map[string]map[string]string{"cluster": {"redis": redis, "node_id": node, "advertise": advertise, "room_ttl": ttl}})
		cfg, err := parseConfig("f.yaml", y) // JSON is YAML
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v is not a config error", err)
			}
			return
		}
		c := cfg.Cluster
		if c.Redis != "" && (c.NodeID == "" || !strings.HasPrefix(c.Advertise, "sip:") || c.RoomTTL < time.Second) {
			t.Fatalf("accepted unusable settings %+v", c)
		}
	})
}
