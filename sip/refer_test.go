package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestParseReferTo(t *testing.T) {
	for _, c := range []struct {
		in, uri, user string
		replaces      *Replaces
		err           error
	}{
		{in: "<sip:carol@127.0.0.1:5060>", uri: "sip:carol@127.0.0.1:5060", user: "carol"},
		{in: `"Carol" <sip:1002@example.com;transport=udp>;x=y`, uri: "sip:1002@example.com;transport=udp", user: "1002"},
		{in: "sip:8005@voxgate", uri: "sip:8005@voxgate", user: "8005"},
		{in: "sip:8005@voxgate;method=INVITE", uri: "sip:8005@voxgate", user: "8005"},
		{in: "<sips:%2B4930123@carrier>", uri: "sips:%2B4930123@carrier", user: "+4930123"},
		{in: "<tel:+4930123;phone-context=+49>", uri: "tel:+4930123;phone-context=+49", user: "+4930123"},
		{in: "<sip:1002;phone-context=x@host>", uri: "sip:1002;phone-context=x@host", user: "1002"},
		{in: "<sip:carol@h?Replaces=abc%40h%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>", uri: "sip:carol@h", user: "carol",
			replaces: &Replaces{CallID: "abc@h", ToTag: "t1", FromTag: "f1"}},
		{in: "<sip:carol@h?replaces=abc%3Bfrom-tag%3Df1%3Bto-tag%3Dt1%3Bearly-only&Accept-Contact=x>", uri: "sip:carol@h", user: "carol",
			replaces: &Replaces{CallID: "abc", ToTag: "t1", FromTag: "f1", EarlyOnly: true}},
		{in: "", err: ErrBadReferTo},
		{in: "   ", err: ErrBadReferTo},
		{in: "<sip:carol@host", err: ErrBadReferTo},
		{in: "<http://example.com/>", err: ErrBadReferTo},
		{in: "<sip:host.example.com>", err: ErrBadReferTo}, // no user
		{in: "<sip:@host>", err: ErrBadReferTo},
		{in: "<sip:ca%zzrol@host>", err: ErrBadReferTo},
		{in: "<sip:car ol@host>", err: ErrBadReferTo},
		{in: "<sip:" + strings.Repeat("1", 65) + "@host>", err: ErrBadReferTo},
		{in: "<sip:carol@h?Replaces=abc%3Bto-tag%3Dt1>", err: ErrBadReplaces},
		{in: "<sip:carol@h?Replaces=%3Bto-tag%3Dt1%3Bfrom-tag%3Df>", err: ErrBadReplaces},
		{in: "<sip:carol@h?Replaces=a%zz>", err: ErrBadReferTo},
	} {
		got, err := ParseReferTo(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: error %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.URI != c.uri || got.User != c.user {
			t.Errorf("%q: uri %q user %q, want %q %q", c.in, got.URI, got.User, c.uri, c.user)
		}
		if (got.Replaces == nil) != (c.replaces == nil) || (got.Replaces != nil && *got.Replaces != *c.replaces) {
			t.Errorf("%q: replaces %+v, want %+v", c.in, got.Replaces, c.replaces)
		}
	}
}

// FuzzParseReferTo: whatever the header, the parser never panics, and what
// it accepts is a target a dialplan can route: a non-empty user of SIP
// characters, and a Replaces with all three ids.
func FuzzParseReferTo(f *testing.F) {
	for _, s := range []string{"<sip:carol@127.0.0.1>", "sip:8005@h;x", "<tel:+49301>",
		"<sip:carol@h?Replaces=abc%40h%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>", "<sip:a@b?Replaces=%", "<sips:%2B1@h>", "<", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseReferTo(in)
		if err != nil {
			if !errors.Is(err, ErrBadReferTo) && !errors.Is(err, ErrBadReplaces) {
				t.Fatalf("%q: an error of neither kind: %v", in, err)
			}
			return
		}
		if got.User == "" || len(got.User) > maxUser || !validUser(got.User) {
			t.Fatalf("%q: accepted user %q", in, got.User)
		}
		if r := got.Replaces; r != nil && (r.CallID == "" || r.ToTag == "" || r.FromTag == "") {
			t.Fatalf("%q: accepted replaces %+v", in, r)
		}
	})
}

// A REFER outside a call gets 405 (voxgate transfers only calls it holds),
// one naming a dialog voxgate does not hold 481, and neither reaches the
// referrer.
func TestReferOutsideACall(t *testing.T) {
	called := false
	_, addr := testServer(t, nil, WithReferrer(referFunc(func(*Call, Refer, func(error)) error { called = true; return nil })))
	c := newRawClient(t, addr)
	c.send(request("REFER", "sip:bob@"+addr, "refer-nodialog", 1, "Refer-To: <sip:carol@"+addr+">\n", ""))
	res := c.final(5 * time.Second)
	if res.StatusCode != 405 || !strings.Contains(res.Reason, "within a call") || res.GetHeader("Allow") == nil {
		t.Fatalf("out of dialog: %d %s", res.StatusCode, res.Reason)
	}
	msg := request("REFER", "sip:bob@"+addr, "refer-unknown", 1, "Refer-To: <sip:carol@"+addr+">\n", "")
	msg = strings.Replace(msg, "To: <sip:bob@"+addr+">", "To: <sip:bob@"+addr+">;tag=nosuch", 1)
	c.send(msg)
	if res := c.final(5 * time.Second); res.StatusCode != 481 {
		t.Fatalf("unknown dialog: %d %s", res.StatusCode, res.Reason)
	}
	if called {
		t.Fatal("the referrer was asked")
	}
}

type referFunc func(*Call, Refer, func(error)) error

func (f referFunc) Refer(c *Call, r Refer, done func(error)) error { return f(c, r, done) }

// Allow lists REFER now that it is served.
func TestAllowListsRefer(t *testing.T) {
	if !strings.Contains(allowedMethods, "REFER") {
		t.Fatal("Allow lacks REFER")
	}
	if knownMethods["REFER"] {
		t.Fatal("REFER is still listed as known but not served")
	}
}

// readRequest waits for the next request on c (answering nothing),
// skipping responses.
func (c *rawClient) readRequest(timeout time.Duration) *sip.Request {
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
			c.t.Fatalf("unparsable message: %v\n%s", err, buf[:n])
		}
		if req, ok := msg.(*sip.Request); ok {
			return req
		}
	}
}

// reply answers a request voxgate sent with 200.
func (c *rawClient) reply(req *sip.Request) {
	c.t.Helper()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if _, err := c.conn.WriteToUDP([]byte(res.String()), c.srv); err != nil {
		c.t.Fatal(err)
	}
}

// REFER inside a call: a missing or doubled Refer-To gets 400, a refusal
// of the referrer its status, a Replaces naming no call 403; an accepted
// one 202, then NOTIFY (Event: refer, message/sipfrag) "100 Trying" and
// the outcome, which ends the subscription. The compact header "r" works.
func TestReferInACall(t *testing.T) {
	type asked struct {
		r    Refer
		done func(error)
	}
	refers := make(chan asked, 4)
	referrer := referFunc(func(c *Call, r Refer, done func(error)) error {
		if r.Target.User == "666" {
			return refusal{403, "Forbidden (premium)"}
		}
		refers <- asked{r, done}
		return nil
	})
	echo := &echoHandler{}
	_, addr := testServer(t, nil, WithHandler(echo), WithReferrer(referrer))
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "refer1", 1, "Content-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	tag, _ := res.To().Params.Get("tag")
	inDialog := func(method string, cseq int, extra string) string {
		m := guest(request(method, "sip:9196@voxgate", "refer1", cseq, extra, ""))
		return strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1)
	}
	c.send(inDialog("ACK", 1, ""))
	for i, tc := range []struct {
		extra  string
		status int
		reason string
	}{
		{"", 400, "Refer-To"},
		{"Refer-To: <sip:a@h>\nRefer-To: <sip:b@h>\n", 400, "Refer-To"},
		{"Refer-To: <mailto:carol@h>\n", 400, "malformed Refer-To"},
		{"Refer-To: <sip:666@h>\n", 403, "premium"},
		{"Refer-To: <sip:carol@h?Replaces=nosuch%3Bto-tag%3Da%3Bfrom-tag%3Db>\n", 403, "Replaces"},
	} {
		c.send(inDialog("REFER", 2+i, tc.extra))
		if res := c.final(3 * time.Second); res.StatusCode != tc.status || !strings.Contains(res.Reason, tc.reason) {
			t.Errorf("%q: %d %s, want %d with %q", tc.extra, res.StatusCode, res.Reason, tc.status, tc.reason)
		}
	}
	c.send(inDialog("REFER", 10, "r: <sip:carol@h>\nReferred-By: <sip:guest@example.org>\n"))
	if res := c.final(3 * time.Second); res.StatusCode != 202 {
		t.Fatalf("REFER: %d %s", res.StatusCode, res.Reason)
	}
	var a asked
	select {
	case a = <-refers:
	case <-time.After(3 * time.Second):
		t.Fatal("the referrer was not asked")
	}
	if a.r.Target.User != "carol" || a.r.ReferredBy != "<sip:guest@example.org>" {
		t.Fatalf("refer %+v", a.r)
	}
	notify := func(want, state string) {
		t.Helper()
		req := c.readRequest(5 * time.Second)
		c.reply(req)
		ev, ct, ss := req.GetHeader("Event"), req.ContentType(), req.GetHeader("Subscription-State")
		if req.Method != sip.NOTIFY || ev == nil || ev.Value() != "refer" || ct == nil || ct.Value() != "message/sipfrag;version=2.0" ||
			ss == nil || !strings.HasPrefix(ss.Value(), state) || !strings.HasPrefix(string(req.Body()), want) {
			t.Fatalf("want NOTIFY %q (%s), got:\n%s", want, state, req)
		}
	}
	notify("SIP/2.0 100 Trying", "active")
	go a.done(refusal{486, "Busy Here"})
	notify("SIP/2.0 486 Busy Here", "terminated")
	// The failed transfer left the call up: the caller ends it.
	c.send(inDialog("BYE", 11, ""))
	if res := c.final(3 * time.Second); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	calls, _ := echo.snapshot()
	select {
	case <-calls[0].Done():
	case <-time.After(2 * time.Second):
		t.Fatal("BYE did not end the call")
	}
}

type refusal struct {
	status int
	reason string
}

func (r refusal) Error() string            { return r.reason }
func (r refusal) SIPStatus() (int, string) { return r.status, r.reason }
