package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/events"
)

// The webhook outbox of a cluster is in Redis: a node killed with
// deliveries waiting does not keep them. On the test LAN (clusterNet: each
// node a binary in a namespace of its own, the phone and the webhook
// endpoint in theirs), node A's endpoint is down while a call on A ends
// (its call.* events wait in A's queue); A is killed with SIGKILL; the
// endpoint comes up; node B, once A's liveness key has expired, takes A's
// waiting deliveries over and sends them across the LAN, each with its
// event id header.
func TestClusterWebhooksOfDeadNode(t *testing.T) {
	peertest.Need(t, "ip", "baresip", "redis-server")
	cn := newClusterNet(t)
	shared := cn.shared
	ctx := context.Background()
	hookNS := cn.join(t) // nothing listens there yet
	hookURL := fmt.Sprintf("http://%s:8090/hooks", hookNS.IP)
	hooks := fmt.Sprintf("webhooks:\n  - {name: crm, url: %q, secret: %q, events: [\"call.*\"]}\n", hookURL, hookSecret)
	a := cn.newNodeWith(t, "a", 0, hooks)
	b := cn.newNodeWith(t, "b", 1, hooks)
	if !waitUntil(10*time.Second, func() bool { ns, _ := shared.Nodes(ctx); return len(ns) == 2 }) {
		t.Fatal("the nodes did not join the cluster")
	}

	// A call on A ends while the endpoint is down.
	phone := cn.phone(t, a.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 500, Dial: "8100"})
	phone.Command("hangup", "")
	phone.WaitEnded(5 * time.Second)
	phone.Stop()
	boxA := shared.Outbox("node-a")
	var waiting []string
	if !waitUntil(10*time.Second, func() bool {
		due, _ := boxA.DueFor(ctx, "crm", time.Now().Add(time.Hour), 100)
		waiting = waiting[:0]
		failed := true
		for _, e := range due {
			waiting = append(waiting, strings.TrimSuffix(e.ID, "@crm"))
			failed = failed && e.Attempts > 0
		}
		return len(due) >= 3 && failed // started, answered, ended; each tried once
	}) {
		t.Fatalf("node A's queue in Redis: %v (want the call's three events, each tried)", waiting)
	}
	slices.Sort(waiting)
	if strings.Contains(b.p.output(), "took over") {
		t.Fatal("node B took A's deliveries while A was alive")
	}

	// A dies; the endpoint comes up.
	_ = a.p.cmd.Process.Signal(syscall.SIGKILL)
	if _, err := a.p.waitExit(t, 5*time.Second); err == nil {
		t.Fatal("node A exited cleanly after SIGKILL")
	}
	killed := time.Now()
	rcv := &idReceiver{byID: map[string]int{}}
	l := hookNS.Listen(t, hookNS.IP+":8090")
	hs := &http.Server{Handler: rcv}
	go func() { _ = hs.Serve(l) }()
	defer hs.Close()

	if !waitUntil(20*time.Second, func() bool { return len(rcv.ids()) >= len(waiting) }) {
		t.Fatalf("delivered %v of node A's %v after it was killed; node B's log:\n%s", rcv.ids(), waiting, tail(b.p.output(), 40))
	}
	t.Logf("node B delivered node A's %d events %.1f s after A was killed", len(waiting), time.Since(killed).Seconds())
	got := rcv.ids()
	for _, id := range waiting {
		if !slices.Contains(got, id) {
			t.Errorf("event %s of node A was not delivered (got %v)", id, got)
		}
	}
	if !strings.Contains(b.p.output(), `"msg":"cluster: took over the webhook deliveries a dead node left waiting","node":"node-b","dead_node":"node-a"`) {
		t.Errorf("node B did not log that it took A's deliveries over:\n%s", tail(b.p.output(), 40))
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("deliveries without a matching event id header: %v", rcv.bad)
	}
	if due, _ := boxA.DueFor(ctx, "crm", time.Now().Add(time.Hour), 100); len(due) != 0 {
		t.Errorf("node A's queue still has %d entries", len(due))
	}
}

// idReceiver accepts every webhook and records its event id (the
// Voxgate-Event-Id header, which must be the body's id).
type idReceiver struct {
	mu   sync.Mutex
	byID map[string]int
	bad  []string
}

func (h *idReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.ID == "" || r.Header.Get(events.HeaderEventID) != ev.ID {
		h.bad = append(h.bad, string(body))
	}
	h.byID[ev.ID]++
	w.WriteHeader(http.StatusNoContent)
}

// ids lists the event ids received, sorted.
func (h *idReceiver) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id := range h.byID {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
