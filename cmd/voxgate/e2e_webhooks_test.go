package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

const hookSecret = "e2e-webhook-secret-0123"

// hookReceiver is a webhook endpoint that checks each signature by hand,
// answers 503 to the first two attempts of every event, and keeps what it
// accepted by event id.
type hookReceiver struct {
	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]int
	events   map[string]hookEvent
	bad      []string
}

type hookEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ts, sig string
	for _, p := range strings.Split(r.Header.Get("Voxgate-Signature"), ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write([]byte(ts + "." + string(body)))
	var ev hookEvent
	err := json.Unmarshal(body, &ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	if sig != hex.EncodeToString(m.Sum(nil)) || err != nil || ev.ID == "" || ev.ID != r.Header.Get("Voxgate-Event-Id") {
		h.bad = append(h.bad, string(body))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	h.attempts[ev.ID]++
	if h.attempts[ev.ID] <= 2 {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	h.accepted[ev.ID]++
	h.events[ev.ID] = ev
	w.WriteHeader(http.StatusOK)
}

// byType counts accepted events by type.
func (h *hookReceiver) byType() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, ev := range h.events {
		out[ev.Type]++
	}
	return out
}

// Webhooks survive a restart: two calls end while the endpoint refuses
// their events, voxgate stops (SIGTERM) with deliveries still waiting in the
// outbox, and the next run delivers them. Every event arrives once by id,
// each signature checks out.
func TestWebhooksSurviveRestart(t *testing.T) {
	peertest.Need(t, "baresip")
	rcv := &hookReceiver{attempts: map[string]int{}, accepted: map[string]int{}, events: map[string]hookEvent{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	dataDir := t.TempDir()
	extra := fmt.Sprintf(`data_dir: %q
drain_timeout: 2s
webhooks:
  - {name: crm, url: %q, secret: %q, events: ["call.*"]}
`, dataDir, srv.URL+"/hooks", hookSecret)

	p := startBinary(t, extra)
	for range 2 {
		b := echoCall(t, p.addr)
		if !b.WaitFor("Call established", 10*time.Second) {
			t.Fatalf("echo call not established:\n%s", b.Output())
		}
		time.Sleep(300 * time.Millisecond)
		b.Command("hangup", "")
		if !b.WaitFor("terminate", 5*time.Second) { // baresip's own hang-up
			t.Fatalf("call not ended:\n%s", b.Output())
		}
		b.Stop()
	}
	// Every event has been refused at least once (the first attempt is at
	// once): they wait in the outbox for their retry.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rcv.mu.Lock()
		n := len(rcv.attempts)
		rcv.mu.Unlock()
		if n >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events tried", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.waitExit(t, 15*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	before := rcv.byType()

	startBinary(t, extra) // the same data_dir: the outbox is there
	deadline = time.Now().Add(60 * time.Second)
	want := map[string]int{"call.started": 2, "call.answered": 2, "call.ended": 2}
	for {
		got := rcv.byType()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %v (before the restart %v), want %v", got, before, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a duplicate would come with the next retry
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("%d deliveries with a bad signature, e.g. %s", len(rcv.bad), rcv.bad[0])
	}
	var ids []string
	for id, n := range rcv.accepted {
		ids = append(ids, id)
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	sort.Strings(ids)
	if len(ids) != 6 {
		t.Errorf("%d distinct events, want 6", len(ids))
	}
	// call.ended carries the cause and the duration; all three events of a
	// call name the same call.
	calls := map[string][]string{}
	for _, ev := range rcv.events {
		var d struct {
			CallID string `json:"call_id"`
			Cause  *struct {
				By string `json:"by"`
			} `json:"cause"`
			Duration float64 `json:"duration_s"`
			To       string  `json:"to"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		calls[d.CallID] = append(calls[d.CallID], ev.Type)
		if d.To != "9196" {
			t.Errorf("%s: to %q, want 9196", ev.Type, d.To)
		}
		if ev.Type == "call.ended" && (d.Cause == nil || d.Cause.By != "caller" || d.Duration <= 0) {
			t.Errorf("call.ended without cause or duration: %s", ev.Data)
		}
	}
	if len(calls) != 2 {
		t.Errorf("events of %d calls, want 2: %v", len(calls), calls)
	}
}
