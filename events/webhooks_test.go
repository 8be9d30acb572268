package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/store"
)

const testSecret = "0123456789abcdef-secret"

// receiver is a webhook endpoint that checks every signature by hand (not
// with Verify, so that a bug there cannot hide here), fails the first
// failFirst attempts of each event, and records what it accepted.
type receiver struct {
	t         *testing.T
	failFirst int
	// countsAttempts: this receiver sees every attempt, so the attempt
	// header must count them.
	countsAttempts bool
	mu             sync.Mutex
	attempts       map[string]int // by event id
	accepted       map[string]int // 2xx answers, by event id
	types          map[string]string
	badSigs        int
	block          chan struct{} // when set, every request waits for it
}

func newReceiver(t *testing.T, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, failFirst: failFirst, attempts: map[string]int{}, accepted: map[string]int{}, types: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		r.unblock()
		srv.Close()
	})
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.block != nil {
		<-r.block
	}
	body, _ := io.ReadAll(req.Body)
	sig := req.Header.Get(HeaderSignature)
	var ts, v1 string
	for _, p := range strings.Split(sig, ",") {
		if v, ok := strings.CutPrefix(p, "t="); ok {
			ts = v
		}
		if v, ok := strings.CutPrefix(p, "v1="); ok {
			v1 = v
		}
	}
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte(ts + "." + string(body)))
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	jsonErr := json.Unmarshal(body, &ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	if v1 != hex.EncodeToString(m.Sum(nil)) || jsonErr != nil || ev.ID != req.Header.Get(HeaderEventID) || ev.Type != req.Header.Get(HeaderEventType) {
		r.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if sec, _ := strconv.ParseInt(ts, 10, 64); time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		r.badSigs++
		http.Error(w, "stale", http.StatusUnauthorized)
		return
	}
	r.attempts[ev.ID]++
	if got := req.Header.Get(HeaderAttempt); r.countsAttempts && got != strconv.Itoa(r.attempts[ev.ID]) {
		r.t.Errorf("event %s: attempt header %q, want %d", ev.ID, got, r.attempts[ev.ID])
	}
	if r.attempts[ev.ID] <= r.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.accepted[ev.ID]++
	r.types[ev.ID] = ev.Type
	w.WriteHeader(http.StatusNoContent)
}

// unblock lets blocked requests go on (once).
func (r *receiver) unblock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.block != nil {
		select {
		case <-r.block:
		default:
			close(r.block)
		}
	}
}

// waitAccepted waits until n distinct events were accepted.
func (r *receiver) waitAccepted(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got := len(r.accepted)
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered within %v", got, n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openStore(t *testing.T, path string) *store.SQLite {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var fast = Settings{Poll: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}

func callEvent(i int) Event {
	return Event{Type: CallEnded, Data: CallData{CallID: fmt.Sprintf("call-%d", i), Origin: "user", From: "alice", To: "7000", Cause: &api.HangupCause{By: "caller"}}}
}

func TestDeliveryRetriesSignsAndDeliversOnce(t *testing.T) {
	rcv, srv := newReceiver(t, 2)
	rcv.countsAttempts = true
	db := openStore(t, filepath.Join(t.TempDir(), "voxgate.db"))
	defer db.Close()
	w, err := New([]Endpoint{{Name: "crm", URL: srv.URL, Secret: testSecret}}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	const n = 20
	for i := range n {
		w.Publish(callEvent(i))
	}
	rcv.waitAccepted(t, n, 20*time.Second)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.badSigs != 0 {
		t.Errorf("%d deliveries with a bad signature", rcv.badSigs)
	}
	for id, k := range rcv.accepted {
		if k != 1 || rcv.attempts[id] != 3 {
			t.Errorf("event %s: accepted %d times after %d attempts, want once after 3", id, k, rcv.attempts[id])
		}
	}
	st := w.Stats()
	if st.Delivered != n || st.Failed != 2*n || st.Lost != 0 {
		t.Errorf("stats %+v, want %d delivered, %d failed", st, n, 2*n)
	}
	due, err := db.Due(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil || len(due) != 0 {
		t.Errorf("outbox still holds %d deliveries (%v)", len(due), err)
	}
}

// A restart in the middle loses nothing: what was published while the
// endpoint was down is delivered by the next run, from the file.
func TestRestartLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voxgate.db")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer down.Close()
	db := openStore(t, path)
	w, err := New([]Endpoint{{Name: "crm", URL: down.URL, Secret: testSecret}}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	const n = 10
	for i := range n {
		w.Publish(callEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rcv, srv := newReceiver(t, 0)
	db = openStore(t, path)
	defer db.Close()
	w, err = New([]Endpoint{{Name: "crm", URL: srv.URL, Secret: testSecret}}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Close(context.Background())
	rcv.waitAccepted(t, n, 20*time.Second)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, k := range rcv.accepted {
		if k != 1 {
			t.Errorf("event %s accepted %d times", id, k)
		}
	}
}

// A slow endpoint never slows the publisher, and other endpoints still get
// their events.
func TestSlowEndpointDoesNotBlock(t *testing.T) {
	slow, slowSrv := newReceiver(t, 0)
	slow.block = make(chan struct{})
	fastRcv, fastSrv := newReceiver(t, 0)
	db := openStore(t, filepath.Join(t.TempDir(), "voxgate.db"))
	defer db.Close()
	w, err := New([]Endpoint{
		{Name: "slow", URL: slowSrv.URL, Secret: testSecret, Timeout: time.Minute},
		{Name: "fast", URL: fastSrv.URL, Secret: testSecret, Events: []string{"call.*"}},
	}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	done := make(chan struct{})
	go func() {
		for i := range 500 {
			w.Publish(callEvent(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked behind a slow endpoint")
	}
	fastRcv.waitAccepted(t, 500, 60*time.Second)
	slow.unblock()
	slow.waitAccepted(t, 500, 60*time.Second)
	w.Close(context.Background())
}

// An event that cannot be delivered within max_age is given up.
func TestMaxAgeGivesUp(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer down.Close()
	db := openStore(t, filepath.Join(t.TempDir(), "voxgate.db"))
	defer db.Close()
	w, err := New([]Endpoint{{Name: "crm", URL: down.URL, Secret: testSecret, MaxAge: 200 * time.Millisecond}}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Close(context.Background())
	w.Publish(callEvent(1))
	deadline := time.Now().Add(20 * time.Second)
	for w.Stats().Expired == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not given up: %+v", w.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := w.Stats(); st.Failed < 2 {
		t.Errorf("given up after %d attempts; want retries until max_age", st.Failed)
	}
	due, err := db.Due(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Errorf("a given-up delivery is still due: %d (%v)", len(due), err)
	}
}

// Only the types an endpoint asked for reach it.
func TestEndpointFilters(t *testing.T) {
	rcv, srv := newReceiver(t, 0)
	db := openStore(t, filepath.Join(t.TempDir(), "voxgate.db"))
	defer db.Close()
	w, err := New([]Endpoint{{Name: "rooms", URL: srv.URL, Secret: testSecret, Events: []string{"room.*", TrunkState}}}, db, WithSettings(fast))
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Close(context.Background())
	w.Publish(callEvent(1))
	w.Publish(Event{Type: RoomJoined, Data: RoomData{Room: "8001", LegID: "l1", Name: "alice"}})
	w.Publish(Event{Type: Registration, Data: RegistrationData{User: "bob", State: "registered"}})
	w.Publish(Event{Type: TrunkState, Data: TrunkData{Trunk: "carrier", Registered: true}})
	rcv.waitAccepted(t, 2, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // 5 polls: nothing else may come
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var got []string
	for _, typ := range rcv.types {
		got = append(got, typ)
	}
	if len(got) != 2 || !(got[0] == RoomJoined || got[1] == RoomJoined) || !(got[0] == TrunkState || got[1] == TrunkState) {
		t.Errorf("endpoint got %v, want room.joined and trunk.state", got)
	}
}

func TestValidate(t *testing.T) {
	ok := Endpoint{Name: "a", URL: "https://example.test/hook", Secret: testSecret}
	for _, tc := range []struct {
		name string
		eps  []Endpoint
		want string
	}{
		{"ok", []Endpoint{ok}, ""},
		{"no name", []Endpoint{{URL: ok.URL, Secret: testSecret}}, "webhooks[0].name: required"},
		{"duplicate", []Endpoint{ok, ok}, `webhooks[1].name: duplicate endpoint "a"`},
		{"bad url", []Endpoint{{Name: "a", URL: "ftp://x", Secret: testSecret}}, `webhooks[0].url: "ftp://x" is not an http:// or https:// URL`},
		{"relative url", []Endpoint{{Name: "a", URL: "/hook", Secret: testSecret}}, "is not an http"},
		{"short secret", []Endpoint{{Name: "a", URL: ok.URL, Secret: "short"}}, "webhooks[0].secret: must be at least 16 characters"},
		{"unknown event", []Endpoint{{Name: "a", URL: ok.URL, Secret: testSecret, Events: []string{"call.ended", "call.endd"}}}, `webhooks[0].events[1]: unknown event "call.endd" (want one of call.started`},
		{"empty family", []Endpoint{{Name: "a", URL: ok.URL, Secret: testSecret, Events: []string{"foo.*"}}}, `unknown event "foo.*"`},
		{"family", []Endpoint{{Name: "a", URL: ok.URL, Secret: testSecret, Events: []string{"call.*", "*"}}}, ""},
		{"negative", []Endpoint{{Name: "a", URL: ok.URL, Secret: testSecret, MaxAge: -time.Second}}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps := append([]Endpoint(nil), tc.eps...)
			err := Validate(eps)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			case tc.want == "" && (eps[0].Timeout != 5*time.Second || eps[0].MaxAge != 24*time.Hour):
				t.Fatalf("defaults not filled: %+v", eps[0])
			}
		})
	}
}

func TestWants(t *testing.T) {
	for _, tc := range []struct {
		events []string
		typ    string
		want   bool
	}{
		{nil, CallEnded, true},
		{[]string{"*"}, Registration, true},
		{[]string{"call.*"}, CallEnded, true},
		{[]string{"call.*"}, RoomJoined, false},
		{[]string{CallEnded}, CallStarted, false},
		{[]string{Registration}, Registration, true},
	} {
		ep := Endpoint{Events: tc.events}
		if got := ep.Wants(tc.typ); got != tc.want {
			t.Errorf("%v wants %s = %v, want %v", tc.events, tc.typ, got, tc.want)
		}
	}
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"call.ended"}`)
	h := Sign(testSecret, now, body)
	// By hand: HMAC-SHA256 over "<unix>.<body>".
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte("1800000000." + string(body)))
	if want := "t=1800000000,v1=" + hex.EncodeToString(m.Sum(nil)); h != want {
		t.Fatalf("Sign = %s, want %s", h, want)
	}
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", testSecret, h, body, now.Add(time.Minute), nil},
		{"two signatures, one good (secret rotation)", testSecret, "v1=00," + h, body, now, nil},
		{"tampered body", testSecret, h, []byte(`{"id":"evt_2"}`), now, ErrBadSignature},
		{"other secret", "another-secret-of-16", h, body, now, ErrBadSignature},
		{"replayed late", testSecret, h, body, now.Add(time.Hour), ErrStale},
		{"no timestamp", testSecret, strings.SplitN(h, ",", 2)[1], body, now, ErrBadSignature},
		{"garbage", testSecret, "t=x,v1", body, now, ErrBadSignature},
		{"empty", testSecret, "", body, now, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.secret, tc.header, tc.body, 5*time.Minute, tc.now); err != tc.want {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=abcd", []byte("{}"))
	f.Add(",,=,t=,v1=", []byte(nil))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		now := time.Unix(1_800_000_000, 0)
		if Verify(testSecret, header, body, time.Minute, now) != nil {
			return
		}
		// Accepted: the header must carry the true signature for its own timestamp.
		for _, p := range strings.Split(header, ",") {
			if ts, ok := strings.CutPrefix(strings.TrimSpace(p), "t="); ok {
				sec, _ := strconv.ParseInt(ts, 10, 64)
				want := Sign(testSecret, time.Unix(sec, 0), body)
				if !strings.Contains(header, want[strings.Index(want, "v1="):]) {
					t.Fatalf("Verify accepted %q", header)
				}
			}
		}
	})
}
