package sip

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// register sends a REGISTER answering the challenge; it returns the final response.
type registerer struct {
	t      *testing.T
	c      *rawClient
	cseq   int
	callID string
}

func (r *registerer) do(user, password, extra string) (code int, contacts []string, resHeaders string) {
	r.t.Helper()
	r.cseq++
	msg := func(auth string) string {
		m := request("REGISTER", "sip:voxgate", r.callID, r.cseq, auth+extra, "")
		m = strings.Replace(m, "From: <sip:alice@voxgate>", "From: <sip:"+user+"@voxgate>", 1)
		m = strings.Replace(m, "To: <sip:voxgate>", "To: <sip:"+user+"@voxgate>", 1)
		m = strings.Replace(m, fmt.Sprintf("branch=z9hG4bK%s%d", r.callID, r.cseq), fmt.Sprintf("branch=z9hG4bK%s%d%d", r.callID, r.cseq, time.Now().UnixNano()), 1)
		if strings.Contains(extra, "Contact:") {
			m = strings.Replace(m, "Contact: <sip:alice@127.0.0.1:PORT>\n", "", 1)
		}
		return m
	}
	r.c.send(msg(""))
	res := r.c.final(3 * time.Second)
	if res.StatusCode == 401 {
		ch := res.GetHeader("WWW-Authenticate").Value()
		r.cseq++
		r.c.send(msg("Authorization: " + digestHeader(r.t, ch, "REGISTER", "sip:voxgate", user, password) + "\n"))
		res = r.c.final(3 * time.Second)
	}
	for _, h := range res.GetHeaders("Contact") {
		contacts = append(contacts, h.Value())
	}
	return res.StatusCode, contacts, res.String()
}

func TestRegistrar(t *testing.T) {
	s, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	r := &registerer{t: t, c: c, callID: "reg1"}

	if code, _, _ := r.do("alice", "wrong", ""); code != 401 {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	if n := len(s.Bindings("alice")); n != 0 {
		t.Fatalf("wrong password left %d bindings", n)
	}
	code, contacts, _ := r.do("alice", "alice-secret", "Expires: 300\n")
	if code != 200 || len(contacts) != 1 || !strings.Contains(contacts[0], "expires=300") {
		t.Fatalf("register: %d %v", code, contacts)
	}
	// A second contact for the same address-of-record.
	code, contacts, _ = r.do("alice", "alice-secret", "Contact: <sip:alice@127.0.0.1:5999>;expires=120\n")
	if code != 200 || len(contacts) != 2 {
		t.Fatalf("second contact: %d %v", code, contacts)
	}
	b := s.Bindings("alice")
	if len(b) != 2 || b[0].Source != fmt.Sprintf("127.0.0.1:%d", c.port()) {
		t.Fatalf("bindings %+v", b)
	}
	// Below the minimum: 423 with Min-Expires.
	code, _, raw := r.do("alice", "alice-secret", "Expires: 5\n")
	if code != 423 || !strings.Contains(raw, "Min-Expires: 60") {
		t.Fatalf("short expiry: %d\n%s", code, raw)
	}
	// Above the maximum: shortened.
	_, contacts, _ = r.do("alice", "alice-secret", "Expires: 999999\n")
	if !strings.Contains(strings.Join(contacts, ","), "expires=3600") {
		t.Fatalf("long expiry not capped: %v", contacts)
	}
	// Unregister one contact, then all with *.
	code, contacts, _ = r.do("alice", "alice-secret", "Contact: <sip:alice@127.0.0.1:5999>;expires=0\n")
	if code != 200 || len(contacts) != 1 {
		t.Fatalf("unregister one: %d %v", code, contacts)
	}
	code, contacts, _ = r.do("alice", "alice-secret", "Contact: *\nExpires: 0\n")
	if code != 200 || len(contacts) != 0 || len(s.Bindings("alice")) != 0 {
		t.Fatalf("unregister all: %d %v", code, contacts)
	}
	// An HA1-only user.
	if code, _, _ := r.do("bob", "bob-secret", ""); code != 200 {
		t.Fatalf("HA1 user: %d", code)
	}
	// Credentials of one user for another's address-of-record.
	r.cseq++
	m := request("REGISTER", "sip:voxgate", "x1", 1, "", "")
	m = strings.Replace(m, "To: <sip:voxgate>", "To: <sip:bob@voxgate>", 1)
	c.send(m)
	ch := c.final(3 * time.Second).GetHeader("WWW-Authenticate").Value()
	m = request("REGISTER", "sip:voxgate", "x1", 2, "Authorization: "+digestHeader(t, ch, "REGISTER", "sip:voxgate", "alice", "alice-secret")+"\n", "")
	m = strings.Replace(m, "To: <sip:voxgate>", "To: <sip:bob@voxgate>", 1)
	c.send(m)
	if res := c.final(3 * time.Second); res.StatusCode != 403 {
		t.Fatalf("alice registering bob: %d, want 403", res.StatusCode)
	}
}

func TestRegistrarStaleNonce(t *testing.T) {
	s, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	c.send(request("REGISTER", "sip:voxgate", "st1", 1, "", ""))
	ch := c.final(3 * time.Second).GetHeader("WWW-Authenticate").Value()
	s.auth.nonces.skew.Store(int64(time.Hour))
	auth := digestHeader(t, ch, "REGISTER", "sip:voxgate", "alice", "alice-secret")
	m := strings.Replace(request("REGISTER", "sip:voxgate", "st1", 2, "Authorization: "+auth+"\n", ""), "To: <sip:voxgate>", "To: <sip:alice@voxgate>", 1)
	c.send(m)
	res := c.final(3 * time.Second)
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("stale nonce: %d %v", res.StatusCode, res.GetHeader("WWW-Authenticate"))
	}
}

func TestGuardBansPasswordGuessing(t *testing.T) {
	s, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	r := &registerer{t: t, c: c, callID: "g1"}
	for i := 0; i < 6; i++ {
		r.do("alice", fmt.Sprintf("guess%d", i), "")
	}
	// Banned now: even the right password is refused, with a reason.
	r.cseq++
	c.send(strings.Replace(request("REGISTER", "sip:voxgate", "g1", 100, "", ""), "To: <sip:voxgate>", "To: <sip:alice@voxgate>", 1))
	res := c.final(3 * time.Second)
	if res.StatusCode != 403 || !strings.Contains(res.Reason, "too many") {
		t.Fatalf("after guessing: %d %q, want 403", res.StatusCode, res.Reason)
	}
	if len(s.Bindings("alice")) != 0 {
		t.Fatal("a banned source registered")
	}
}

// A user may register at most max_contacts contacts: one more is refused
// 403 with the reason and stores nothing. A 200 listing every contact is
// larger than an Ethernet MTU and still reaches the phone over UDP.
func TestRegistrarContactCapAndLargeAnswer(t *testing.T) {
	s, addr := testServer(t, func(c *Config) { c.MaxContacts = 12 })
	c := newRawClient(t, addr)
	r := &registerer{t: t, c: c, callID: "cap1"}
	long := strings.Repeat("x", 80) // long contact URIs make a large 200
	var code int
	var contacts []string
	var res string
	for i := 1; i <= 12; i++ {
		code, contacts, res = r.do("alice", "alice-secret", fmt.Sprintf("Contact: <sip:alice-%d-%s@127.0.0.1:PORT>\n", i, long))
		if code != 200 || len(contacts) != i {
			t.Fatalf("contact %d: %d, %d contacts listed", i, code, len(contacts))
		}
	}
	if len(res) <= 1300 {
		t.Fatalf("the last 200 has %d bytes; the test wants one over 1300", len(res))
	}
	code, _, res = r.do("alice", "alice-secret", fmt.Sprintf("Contact: <sip:alice-13-%s@127.0.0.1:PORT>\n", long))
	if code != 403 || !strings.Contains(res, "too many contacts: at most 12") {
		t.Fatalf("a 13th contact: %d\n%s", code, res)
	}
	if n := len(s.Bindings("alice")); n != 12 {
		t.Fatalf("%d bindings after the refusal, want 12", n)
	}
}

// A request with 41 Vias (RFC 4475's spirit) gets its answer over UDP,
// although the answer, carrying every Via, exceeds 1300 bytes.
func TestManyViasAnsweredOverUDP(t *testing.T) {
	_, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	var vias strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&vias, "Via: SIP/2.0/UDP 192.0.2.%d:5060;branch=z9hG4bKhop%d\n", i+1, i)
	}
	msg := request("OPTIONS", "sip:voxgate@127.0.0.1", "vias", 1, "", "")
	msg = strings.Replace(msg, "Max-Forwards: 70\n", "Max-Forwards: 70\n"+vias.String(), 1)
	c.send(msg)
	if res := c.final(3 * time.Second); res.StatusCode != 200 || len(res.GetHeaders("Via")) != 41 {
		t.Fatalf("%d with %d Vias", res.StatusCode, len(res.GetHeaders("Via")))
	}
}

// The registrar's own allocations per REGISTER stay at five over what
// sipgo spends on its 200 (building it from the request, sending it
// through the transaction): the contact's URI string (two, one of them
// sipgo's port formatting), the 200's Contact header and its value, the
// log line's source. Parsing and the transaction are made outside the count.
func TestRegisterAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (make test runs this test again without it)")
	}
	s, _ := testServer(t, nil)
	const runs = 200
	n := 0 // REGISTERs made: each answers a challenge of its own
	prepare := func() ([]*sip.Request, []*siptest.ServerTxRecorder) {
		parser := sip.NewParser()
		reqs := make([]*sip.Request, runs+1) // AllocsPerRun runs once more to warm up
		txs := make([]*siptest.ServerTxRecorder, runs+1)
		for i := range reqs {
			n++
			msg, err := parser.ParseSIP(benchRegister(t, s, n))
			if err != nil {
				t.Fatal(err)
			}
			reqs[i] = msg.(*sip.Request)
			reqs[i].SetTransport("UDP") // as sipgo's UDP transport does
			reqs[i].SetSource("127.0.0.1:5099")
			txs[i] = siptest.NewServerTxRecorder(reqs[i])
		}
		return reqs, txs
	}
	done := func(txs []*siptest.ServerTxRecorder) {
		for _, tx := range txs {
			if res := tx.Result(); len(res) != 1 || res[0].StatusCode != 200 {
				t.Fatalf("got %v", res)
			}
			tx.Terminate()
		}
	}

	reqs, txs := prepare()
	i := 0
	handled := testing.AllocsPerRun(runs, func() {
		s.dispatch(reqs[i], txs[i])
		i++
	})
	done(txs)
	reqs, txs = prepare()
	i = 0
	bare := testing.AllocsPerRun(runs, func() {
		if err := txs[i].Respond(sip.NewResponseFromRequest(reqs[i], 200, "OK", nil)); err != nil {
			t.Fatal(err)
		}
		i++
	})
	done(txs)
	if own := handled - bare; own > 5 {
		t.Errorf("a REGISTER made %.0f allocations, %.0f over sipgo's 200 (%.0f): want at most 5", handled, own, bare)
	}
	t.Logf("a REGISTER made %.0f allocations, sipgo's 200 alone %.0f", handled, bare)
}
