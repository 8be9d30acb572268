package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// memLocations is a LocationStore in memory: the contract as the server
// uses it (the real one is the SQLite store, tested in cmd/voxgate).
type memLocations struct {
	mu   sync.Mutex
	b    map[[2]string]Binding
	fail bool
}

func newMemLocations() *memLocations { return &memLocations{b: map[[2]string]Binding{}} }

func (m *memLocations) SaveBinding(_ context.Context, b Binding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b[[2]string{b.AOR, b.Contact}] = b
	return nil
}

func (m *memLocations) DeleteBinding(_ context.Context, aor, contact string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.b {
		if k[0] == aor && (contact == "" || k[1] == contact) {
			delete(m.b, k)
		}
	}
	return nil
}

func (m *memLocations) LoadBindings(_ context.Context, now time.Time) ([]Binding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return nil, errors.New("disk on fire")
	}
	var out []Binding
	for k, b := range m.b {
		if !b.Expires.After(now) {
			delete(m.b, k) // as the store does
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func (m *memLocations) contacts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.b {
		out = append(out, k[0]+" "+k[1])
	}
	sort.Strings(out)
	return out
}

// waitContacts waits until the store holds want (in any order: contacts
// are sorted, and so is want; a phone's port from 60000 up sorts after
// another contact's 5999, which once failed this test).
func waitContacts(t *testing.T, m *memLocations, want ...string) {
	t.Helper()
	want = slices.Clone(want)
	sort.Strings(want)
	deadline := time.Now().Add(3 * time.Second)
	for fmt.Sprint(m.contacts()) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("stored contacts %v, want %v", m.contacts(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every registration change is written through; a new server on the same
// store knows the live bindings (not the expired) and can dial them.
func TestLocationStoreWriteThrough(t *testing.T) {
	m := newMemLocations()
	s, addr := testServer(t, nil, WithLocationStore(m))
	c := newRawClient(t, addr)
	r := &registerer{t: t, c: c, callID: "persist1"}
	phone := fmt.Sprintf("alice sip:alice@127.0.0.1:%d", c.port())

	if code, _, _ := r.do("alice", "alice-secret", "Expires: 300\n"); code != 200 {
		t.Fatalf("register: %d", code)
	}
	if code, _, _ := r.do("alice", "alice-secret", "Contact: <sip:alice@127.0.0.1:5999>;expires=120\n"); code != 200 {
		t.Fatalf("second contact: %d", code)
	}
	waitContacts(t, m, phone, "alice sip:alice@127.0.0.1:5999")
	r.do("alice", "alice-secret", "Contact: <sip:alice@127.0.0.1:5999>;expires=0\n")
	waitContacts(t, m, phone)

	// An expired binding in the store is not loaded.
	_ = m.SaveBinding(context.Background(), Binding{AOR: "bob", Contact: "sip:bob@127.0.0.1:5998", Expires: time.Now().Add(-time.Second)})
	want := s.Bindings("alice")
	s.Close() // voxgate stops

	s2, _ := testServer(t, nil, WithLocationStore(m))
	got := s2.Bindings("alice")
	if len(got) != 1 || got[0].Contact != want[0].Contact || got[0].Source != want[0].Source || !got[0].Expires.Equal(want[0].Expires) {
		t.Fatalf("after restart alice has %+v, want %+v", got, want)
	}
	if b := s2.Bindings("bob"); len(b) != 0 {
		t.Fatalf("an expired binding was loaded: %+v", b)
	}

	// The loaded binding is dialable: the phone gets the INVITE.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() { _, _ = s2.DialBinding(ctx, got[0], "carol") }()
	inv := c.request(3 * time.Second)
	if inv.Method != sip.INVITE || !strings.Contains(inv.Recipient.String(), fmt.Sprint(c.port())) {
		t.Fatalf("the phone got %s %s, want an INVITE to its contact", inv.Method, inv.Recipient.String())
	}
	cancel()

	// Contact: * removes every binding, in the store too.
	r2 := &registerer{t: t, c: newRawClient(t, s2.Addrs()[0].String()), callID: "persist2"}
	if code, _, _ := r2.do("alice", "alice-secret", "Contact: *\nExpires: 0\n"); code != 200 {
		t.Fatalf("unregister all: %d", code)
	}
	waitContacts(t, m)

	// A binding this server does not hold (made through another node of a
	// cluster, in the shared store) is removed from the store by an
	// unregistration that reaches this server.
	_ = m.SaveBinding(context.Background(), Binding{AOR: "alice", Contact: "sip:alice@127.0.0.1:5997", Expires: time.Now().Add(time.Hour)})
	_ = m.SaveBinding(context.Background(), Binding{AOR: "bob", Contact: "sip:bob@127.0.0.1:5996", Expires: time.Now().Add(time.Hour)})
	if code, _, _ := r2.do("alice", "alice-secret", "Contact: <sip:alice@127.0.0.1:5997>;expires=0\n"); code != 200 {
		t.Fatalf("unregister a contact held elsewhere: %d", code)
	}
	waitContacts(t, m, "bob sip:bob@127.0.0.1:5996")
	r3 := &registerer{t: t, c: newRawClient(t, s2.Addrs()[0].String()), callID: "persist3"}
	if code, _, _ := r3.do("bob", "bob-secret", "Contact: *\nExpires: 0\n"); code != 200 {
		t.Fatalf("unregister all of a user held elsewhere: %d", code)
	}
	waitContacts(t, m)
}

// A store that cannot be read does not stop the server: it starts with no
// registrations.
func TestLocationStoreLoadFails(t *testing.T) {
	m := newMemLocations()
	m.fail = true
	s, _ := testServer(t, nil, WithLocationStore(m))
	if n := len(s.Registrations()); n != 0 {
		t.Fatalf("%d registrations from a failing store", n)
	}
}

// request waits for a request (not a response) from the server.
func (c *rawClient) request(timeout time.Duration) *sip.Request {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			c.t.Fatalf("no request: %v", err)
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		if req, ok := msg.(*sip.Request); ok {
			return req
		}
	}
}

// recordingLocations is memLocations that records its writes in order; the
// first write waits for release (a slow disk).
type recordingLocations struct {
	*memLocations
	entered chan struct{}
	release chan struct{}

	mu     sync.Mutex
	writes []string
}

func (r *recordingLocations) record(w string) {
	r.mu.Lock()
	r.writes = append(r.writes, w)
	r.mu.Unlock()
	select {
	case r.entered <- struct{}{}:
	default:
	}
	<-r.release
}

func (r *recordingLocations) SaveBinding(ctx context.Context, b Binding) error {
	r.record(fmt.Sprintf("save %s %s %d", b.AOR, b.Contact, b.CSeq))
	return r.memLocations.SaveBinding(ctx, b)
}

func (r *recordingLocations) DeleteBinding(ctx context.Context, aor, contact string) error {
	r.record(fmt.Sprintf("delete %s %q", aor, contact))
	return r.memLocations.DeleteBinding(ctx, aor, contact)
}

func (r *recordingLocations) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// While the store is busy, a burst of refreshes of one binding leaves one
// save waiting (the newest), not one per refresh; a delete keeps its place
// in the order, and a save after it is not folded into one before it.
func TestSupersede(t *testing.T) {
	st := &recordingLocations{memLocations: newMemLocations(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	w := newLocWriter(&Server{log: quietLogger(), locStore: st})
	go w.run()
	exp := time.Now().Add(time.Hour)
	save := func(aor, contact string, cseq int) {
		w.queue(bindingOp{b: Binding{AOR: aor, Contact: contact, CSeq: uint32(cseq), Expires: exp}})
	}
	save("alice", "sip:a1", 1) // the writer takes it and waits on the store
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not write")
	}
	for cseq := 2; cseq <= 100; cseq++ { // refreshes while the store is slow
		save("alice", "sip:a1", cseq)
	}
	save("alice", "sip:a2", 1)
	save("bob", "sip:b1", 1)
	save("bob", "sip:b1", 2)
	w.queue(bindingOp{b: Binding{AOR: "alice", Contact: "sip:a2"}, del: true})
	save("alice", "sip:a2", 2) // after its delete: not folded into the save before
	w.queue(bindingOp{b: Binding{AOR: "alice"}, del: true})
	save("alice", "sip:a1", 101)
	save("alice", "sip:a1", 102)
	close(st.release)
	w.close()

	want := []string{
		"save alice sip:a1 1",
		"save alice sip:a1 100",
		"save alice sip:a2 1",
		"save bob sip:b1 2",
		`delete alice "sip:a2"`,
		"save alice sip:a2 2",
		`delete alice ""`,
		"save alice sip:a1 102",
	}
	if got := st.recorded(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the store got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w.superseded != 100 { // 98 of alice's a1, one of bob's, one a1 after the delete
		t.Fatalf("%d saves superseded, want 100", w.superseded)
	}
	waitContacts(t, st.memLocations, "alice sip:a1", "bob sip:b1")
}
