package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

const failoverPlan = `
contexts:
  out:
    allow_trunks: true
    rules:
      - prefix: "00"
        dial: {trunks: [a, b], number: "+$1", timeout: 5, try_timeout: 1}
      - prefix: "0"
        dial: {trunk: a, timeout: 5}
origins: {user: out}
`

// healthDialer is a fakeDialer whose trunks qualify may mark down, and
// which counts the tries of each trunk.
type healthDialer struct {
	*fakeDialer
	down  map[string]bool
	mu    sync.Mutex
	tries []string
}

func (d *healthDialer) TrunkUp(t string) bool { return !d.down[t] }

func (d *healthDialer) DialTrunk(ctx context.Context, trunk, number, callerID string) (Leg, error) {
	d.mu.Lock()
	d.tries = append(d.tries, trunk)
	d.mu.Unlock()
	return d.fakeDialer.DialTrunk(ctx, trunk, number, callerID)
}

func (d *healthDialer) tried() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tries, ",")
}

// A dial through trunks [a, b] fails over on what says "this carrier
// cannot take the call now" (timeout, 408, 5xx, a transport error, marked
// down) and stops at an answer about the callee (404, 486): the caller
// gets that answer. The call record names the trunk that carried it.
func TestDialFailover(t *testing.T) {
	answers := func() *fakeDevice { return &fakeDevice{delay: 10 * time.Millisecond} }
	for _, c := range []struct {
		name    string
		dialed  string
		a, b    *fakeDevice
		down    []string
		tried   string
		status  int    // the caller's rejection; 0: answered
		carrier string // the record's trunk: the one that carried the call or gave the last answer
		log     string
	}{
		{"503 then answer", "0049", &fakeDevice{err: rejection{503, "Service Unavailable"}}, answers(), nil, "a,b", 0, "b", "reason=\"503 Service Unavailable\""},
		{"408 then answer", "0049", &fakeDevice{err: rejection{408, "Request Timeout"}}, answers(), nil, "a,b", 0, "b", "reason=\"408 Request Timeout\""},
		{"500 then answer", "0049", &fakeDevice{err: rejection{500, "Server Internal Error"}}, answers(), nil, "a,b", 0, "b", "500"},
		{"transport error then answer", "0049", &fakeDevice{err: errors.New("dial udp 192.0.2.1:5060: connection refused")}, answers(), nil, "a,b", 0, "b", "unreachable"},
		{"no final answer within try_timeout", "0049", &fakeDevice{delay: 10 * time.Second}, answers(), nil, "a,b", 0, "b", "reason=timeout"},
		{"busy is an answer", "0049", &fakeDevice{err: rejection{486, "Busy Here"}}, answers(), nil, "a", 486, "a", "no failover"},
		{"not found is an answer", "0049", &fakeDevice{err: rejection{404, "Not Found"}}, answers(), nil, "a", 404, "a", "no failover"},
		{"down is skipped", "0049", answers(), answers(), []string{"a"}, "b", 0, "b", "marked down by qualify"},
		{"all down: tried anyway", "0049", answers(), answers(), []string{"a", "b"}, "a", 0, "a", "trying them anyway"},
		{"both fail: the last answer", "0049", &fakeDevice{err: rejection{503, "Service Unavailable"}}, &fakeDevice{err: rejection{502, "Bad Gateway"}}, nil, "a,b", 502, "b", "no trunk left"},
		{"trunk: alone has no failover", "0123", &fakeDevice{err: rejection{503, "Service Unavailable"}}, answers(), nil, "a", 503, "a", "no trunk left"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			d := &healthDialer{fakeDialer: &fakeDialer{trunks: map[string]*fakeDevice{"a": c.a, "b": c.b}}, down: map[string]bool{}}
			for _, t := range c.down {
				d.down[t] = true
			}
			p, err := dialplan.Parse("plan.yaml", []byte(failoverPlan), dialplan.Options{Trunks: []string{"a", "b"}})
			if err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			sb := New(Config{Plan: p, Dialers: []Dialer{d}, Records: st, Logger: slog.New(slog.NewTextHandler(logs, nil)),
				Rooms: bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone}})
			caller := newFakeLeg("c-"+strings.ReplaceAll(c.name, " ", "-"), "alice", c.dialed)
			done := call(sb, caller, "user")
			if c.status == 0 {
				eventually(t, "the call is bridged", func() bool { return strings.Contains(logs.String(), "call bridged") })
				caller.hangUp()
			}
			waitEnded(t, done)
			if answered, status, _ := caller.state(); answered != (c.status == 0) || status != c.status {
				t.Errorf("answered %v status %d, want status %d", answered, status, c.status)
			}
			if got := d.tried(); got != c.tried {
				t.Errorf("tried %q, want %q", got, c.tried)
			}
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("no %q in the log:\n%s", c.log, logs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := sb.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if r := recordOf(t, st, caller.ID()); r.Trunk != c.carrier {
				t.Errorf("record's trunk %q, want %q", r.Trunk, c.carrier)
			}
		})
	}
}

// The REST API's dial into a room takes trunks in order too, and refuses
// a bad list before ringing anyone.
func TestAPIDialFailover(t *testing.T) {
	d := &healthDialer{fakeDialer: &fakeDialer{trunks: map[string]*fakeDevice{
		"a": {err: rejection{503, "Service Unavailable"}}, "b": {delay: 10 * time.Millisecond}}}, down: map[string]bool{}}
	p, err := dialplan.Parse("plan.yaml", []byte(failoverPlan), dialplan.Options{Trunks: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	sb := New(Config{Plan: p, Dialers: []Dialer{d}, Logger: slog.New(slog.DiscardHandler),
		Rooms: bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone}})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Close(ctx)
	}()
	for _, c := range []struct {
		name string
		req  api.DialRequest
		want string
	}{
		{"trunk and trunks", api.DialRequest{Trunk: "a", Trunks: []string{"b"}, Number: "1"}, "not both"},
		{"unknown", api.DialRequest{Trunks: []string{"a", "x"}, Number: "1"}, `trunk "x"`},
		{"twice", api.DialRequest{Trunks: []string{"a", "a"}, Number: "1"}, "twice"},
		{"no number", api.DialRequest{Trunks: []string{"a"}}, "number"},
	} {
		if err := sb.Dial("r", c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if err := sb.Dial("r", api.DialRequest{Trunks: []string{"a", "b"}, Number: "4930"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "trunk b's answer is in the room", func() bool {
		info, err := sb.Room("r")
		return err == nil && len(info.Legs) == 1
	})
	if got := d.tried(); got != "a,b" {
		t.Fatalf("tried %q", got)
	}
}
