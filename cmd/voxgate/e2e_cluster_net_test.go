package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/store"
)

// clusterNet is a cluster test's network, laid out as on real machines:
// a LAN (10.77.0.0/24, a bridge in a namespace of its own, reaching
// nothing outside) where every voxgate node is a binary in a namespace of
// its own with its own address, SIP on port 5060 of it, its RTP, HTTP and
// ICE there too; Kamailio (10.77.0.2:5060) and Redis (10.77.0.3:6379) each
// in theirs; and each phone (baresip) and each Chromium page in one of its
// own (see newPhone, pageProxy). The test process sits on the LAN at
// 10.77.0.1 (the bridge's namespace) and reaches Redis through a forwarder
// on the host's 127.0.0.1 (shared).
type clusterNet struct {
	lan    *peertest.LAN
	red    *peertest.Redis
	shared *store.Redis // the test's own client of the cluster's Redis
	kamNS  *peertest.Netns
	plan   string // the dialplan file (clusterPlan)
	dir    string
	hosts  int // the last member address handed out (see join)
}

// The LAN's fixed addresses: Kamailio, Redis, node i at nodeHost+i.
const (
	kamHost   = 2
	redisHost = 3
	nodeHost  = 11
)

// newClusterNet creates the LAN and starts Redis on it.
func newClusterNet(t *testing.T) *clusterNet {
	t.Helper()
	peertest.Need(t, "ip", "redis-server")
	c := &clusterNet{lan: peertest.NewLAN(t), dir: t.TempDir(), hosts: 99}
	c.kamNS = c.lan.Join(t, kamHost)
	c.red = peertest.StartRedisIn(t, c.lan.Join(t, redisHost))
	shared, err := store.OpenRedis("redis://:" + c.red.Password + "@" + c.lan.Forward(t, c.red.Addr()) + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	c.shared = shared
	c.plan = filepath.Join(c.dir, "dialplan.yaml")
	if err := os.WriteFile(c.plan, []byte(clusterPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// join adds a namespace with the next free address (10.77.0.100 on) to
// the LAN: one per phone or page.
func (c *clusterNet) join(t *testing.T) *peertest.Netns {
	t.Helper()
	c.hosts++
	if c.hosts > 254 {
		t.Fatal("the test LAN has no address left")
	}
	return c.lan.Join(t, c.hosts)
}

// newNode writes the config of node i (name, at 10.77.0.(11+i)) and starts
// it in its namespace: SIP over UDP and TCP on port 5060 of its address,
// RTP on its address, the web side (HTTP and ICE) on port 8080 there;
// advertised to Kamailio as sip:<its address>:5060, as in the shipped
// dispatcher.list.
func (c *clusterNet) newNode(t *testing.T, name string, i int) *clusterNode {
	t.Helper()
	return c.newNodeWith(t, name, i, "")
}

// newNodeWith is newNode with more of the node's config (YAML at the top
// level, e.g. a webhooks section).
func (c *clusterNet) newNodeWith(t *testing.T, name string, i int, extra string) *clusterNode {
	t.Helper()
	ns := c.lan.Join(t, nodeHost+i)
	n := &clusterNode{name: name, ns: ns, addr: ns.IP + ":5060", advertise: "sip:" + ns.IP + ":5060",
		cfgPath: filepath.Join(c.dir, name+".yaml")}
	cfg := fmt.Sprintf(`log: {level: debug, format: json}
sip:
  listen:
    - {transport: udp, addr: "%[1]s:5060"}
    - {transport: tcp, addr: "%[1]s:5060"}
  rtp_ports: "10000-10999"
web: {listen: "%[1]s:8080", ice_ips: ["%[1]s"], api_token: %[2]s}
users:
  - {name: alice, password: alice-secret}
  - {name: bob, password: bob-secret}
dialplan: %[3]s
rooms: {tones: false}
drain_timeout: 20s
data_dir: %[4]s
cluster:
  redis: "%[5]s"
  node_id: node-%[6]s
  advertise: "%[7]s"
  room_ttl: 3s
`, ns.IP, testAPIToken, c.plan, filepath.Join(c.dir, "data-"+name), c.red.URL(), name, n.advertise) + extra
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	return n
}

// kamailio starts Kamailio on the shipped config in its namespace
// (10.77.0.2:5060) in front of nodes; extra are more kamailio arguments.
func (c *clusterNet) kamailio(t *testing.T, nodes []*clusterNode, extra ...string) (string, *peertest.SyncBuffer) {
	t.Helper()
	var advertised []string
	for _, n := range nodes {
		advertised = append(advertised, n.advertise)
	}
	return startClusterKamailioIn(t, c.kamNS, advertised, c.red.Addr()+";pass="+c.red.Password, extra...)
}

// phone starts a baresip phone in a namespace of its own on the LAN,
// talking to addr (Kamailio or a node).
func (c *clusterNet) phone(t *testing.T, addr string, p peertest.Phone) *peertest.Baresip {
	t.Helper()
	p.Netns = c.join(t)
	return peertest.StartPhone(t, addr, p)
}

// tryCall starts a phone in a namespace of its own that calls number at
// addr and returns it once its call is established, or nil (the phone
// stopped) if that did not happen within 4 s.
func (c *clusterNet) tryCall(t *testing.T, addr, user, number string) *peertest.Baresip {
	t.Helper()
	p := peertest.Phone{User: user, Codec: "pcmu", Netns: c.join(t)}
	b := peertest.StartBaresip(t, peertest.BaresipOptions{Account: p.Account(addr), Dial: "sip:" + number + "@" + addr, Netns: p.Netns})
	if b.WaitFor("Call established", 4*time.Second) {
		return b
	}
	b.Stop()
	return nil
}

// pageProxy serves a Chromium page of node n from inside the page's own
// namespace pageNS: it listens on 127.0.0.1 there (a secure context for
// the page), answers /test/call.html and /test/upload itself, and relays
// everything else, the WebSocket too, to the node's web side across the
// LAN, with the Host the page used (so the node sees its own origin). The
// page's media goes straight between its namespace and the node's (ICE).
// It returns the page's base URL and its uploads.
func (c *clusterNet) pageProxy(t *testing.T, pageNS *peertest.Netns, n *clusterNode) (string, chan upload) {
	t.Helper()
	page, err := os.ReadFile("testdata/browser/call.html")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(n.p.webBase(t))
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{DialContext: pageNS.DialContext}
	uploads := make(chan upload, 4)
	mux := http.NewServeMux()
	mux.Handle("/", rp)
	mux.HandleFunc("GET /test/call.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("POST /test/upload", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 10<<20))
		q := req.URL.Query()
		uploads <- upload{status: q.Get("status"), message: q.Get("message"), pairs: q.Get("pairs"), talkers: q.Get("talkers"), present: q.Get("present"), errors: q.Get("errors"), wav: b}
	})
	ln := pageNS.Listen(t, "127.0.0.1:0")
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), uploads
}
