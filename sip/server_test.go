package sip

import (
	"context"
	"fmt"
	"github.com/pion/rtp"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBadInputGetsClearAnswer(t *testing.T) {
	srv, addr := testServer(t, nil)
	cases := []struct {
		name   string
		msg    string
		status int
		reason string // substring of the reason phrase
		header string // a header that must be present
	}{
		{"broken header line", "OPTIONS sip:voxgate SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKb1\nFrom <sip:a@b>;tag=1\nTo: <sip:voxgate>\nCall-ID: b1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n", 400, "Bad Request", ""},
		{"missing Call-ID", "OPTIONS sip:voxgate SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKb2\nFrom: <sip:a@b>;tag=1\nTo: <sip:voxgate>\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n", 400, "Call-ID", ""},
		{"CSeq method mismatch", "OPTIONS sip:voxgate SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKb3\nFrom: <sip:a@b>;tag=1\nTo: <sip:voxgate>\nCall-ID: b3\nCSeq: 1 INVITE\nContent-Length: 0\n\n", 400, "CSeq", ""},
		{"bad Content-Length", "OPTIONS sip:voxgate SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKb4\nFrom: <sip:a@b>;tag=1\nTo: <sip:voxgate>\nCall-ID: b4\nCSeq: 1 OPTIONS\nContent-Length: abc\n\n", 400, "Bad Request", ""},
		{"unknown method", request("FROBNICATE", "sip:voxgate", "u1", 1, "", ""), 501, "Not Implemented", "Allow"},
		{"known but not served", request("SUBSCRIBE", "sip:voxgate", "u2", 1, "", ""), 405, "Method Not Allowed", "Allow"},
		{"unsupported Require", guest(request("INVITE", "sip:9196@voxgate", "r1", 1, "Require: 100rel, foo\nContent-Type: application/sdp\n", testOffer)), 420, "Bad Extension", "Unsupported"},
		{"OPTIONS", request("OPTIONS", "sip:voxgate", "o1", 1, "", ""), 200, "OK", "Allow"},
		{"INVITE bad SDP", guest(request("INVITE", "sip:9196@voxgate", "s1", 1, "Content-Type: application/sdp\n", "v=0\r\nthis is not sdp\r\n")), 400, "SDP", ""},
		{"INVITE no common codec", guest(request("INVITE", "sip:9196@voxgate", "s2", 1, "Content-Type: application/sdp\n",
			strings.Replace(strings.Replace(testOffer, "RTP/AVP 8 0 101", "RTP/AVP 18 101", 1), "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000", 1))), 488, "no common codec", "Warning"},
		{"INVITE unknown number", guest(request("INVITE", "sip:12345@voxgate", "n1", 1, "Content-Type: application/sdp\n", testOffer)), 404, "Not Found", ""},
		{"BYE outside a dialog", request("BYE", "sip:voxgate", "d1", 2, "", ""), 481, "Does Not Exist", ""},
		{"INFO outside a dialog", request("INFO", "sip:voxgate", "d2", 2, "", ""), 481, "Does Not Exist", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(t, addr)
			c.send(tc.msg)
			res := c.final(3 * time.Second)
			if res.StatusCode != tc.status || !strings.Contains(strings.ToLower(res.Reason), strings.ToLower(tc.reason)) {
				t.Fatalf("got %d %q, want %d with %q", res.StatusCode, res.Reason, tc.status, tc.reason)
			}
			if tc.header != "" && res.GetHeader(tc.header) == nil {
				t.Fatalf("response lacks %s:\n%s", tc.header, res)
			}
		})
	}
	// A method a client made up is counted as "other": the counters (and
	// /metrics' labels) stay few whatever clients send.
	st := srv.ServerStats()
	if st.Requests["other"] != 1 || st.Requests["FROBNICATE"] != 0 || st.Requests["SUBSCRIBE"] != 1 || st.Requests["OPTIONS"] == 0 {
		t.Errorf("requests counted by method: %v", st.Requests)
	}
}

// A caller who claims to be a local user must authenticate (407).
func TestInviteFromLocalUserIsChallenged(t *testing.T) {
	_, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	c.send(request("INVITE", "sip:9196@voxgate", "c1", 1, "Content-Type: application/sdp\n", testOffer))
	res := c.final(3 * time.Second)
	if res.StatusCode != 407 || res.GetHeader("Proxy-Authenticate") == nil {
		t.Fatalf("got %d, want 407 with Proxy-Authenticate", res.StatusCode)
	}
	ch := res.GetHeader("Proxy-Authenticate").Value()
	auth := digestHeader(t, ch, "INVITE", "sip:12345@voxgate", "alice", "alice-secret")
	c.send(request("INVITE", "sip:12345@voxgate", "c1", 2, "Proxy-Authorization: "+auth+"\nContent-Type: application/sdp\n", testOffer))
	if res := c.final(3 * time.Second); res.StatusCode != 404 {
		t.Fatalf("authenticated INVITE to an unknown number: got %d, want 404", res.StatusCode)
	}
}

// guest rewrites a request's From to a caller who is not a local user.
func guest(msg string) string {
	return strings.Replace(msg, "sip:alice@voxgate", "sip:guest@example.org", 1)
}

// In a call, INFO with application/dtmf-relay delivers a digit; other INFO
// bodies get 415; BYE ends the call.
func TestInfoDTMFInDialog(t *testing.T) {
	echo := &echoHandler{}
	_, addr := testServer(t, nil, WithHandler(echo))
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "info1", 1, "Content-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	tag, _ := res.To().Params.Get("tag")
	inDialog := func(method string, cseq int, extra, body string) string {
		m := guest(request(method, "sip:9196@voxgate", "info1", cseq, extra, body))
		return strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1)
	}
	c.send(inDialog("ACK", 1, "", ""))
	c.send(inDialog("INFO", 2, "Content-Type: application/dtmf-relay\n", "Signal=5\r\nDuration=160\r\n"))
	if res := c.final(3 * time.Second); res.StatusCode != 200 {
		t.Fatalf("INFO dtmf-relay: %d %s", res.StatusCode, res.Reason)
	}
	c.send(inDialog("INFO", 3, "Content-Type: application/x-unknown\n", "hello"))
	if res := c.final(3 * time.Second); res.StatusCode != 415 {
		t.Fatalf("INFO with another body: %d", res.StatusCode)
	}
	calls, digits := echo.snapshot()
	if digits != "5" || calls[0].Stats().DTMFReceived != "5" {
		t.Fatalf("digits %q, stats %q", digits, calls[0].Stats().DTMFReceived)
	}
	c.send(inDialog("BYE", 4, "", ""))
	if res := c.final(3 * time.Second); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	select {
	case <-calls[0].Done():
	case <-time.After(2 * time.Second):
		t.Fatal("BYE did not end the call")
	}
}

type ringer struct{ calls chan *Call }

func (r ringer) HandleCall(ctx context.Context, c *Call) {
	_ = c.Ringing()
	r.calls <- c
	<-c.Done()
}

// CANCEL of a ringing call: 200 for the CANCEL, 487 for the INVITE.
func TestCancelRingingCall(t *testing.T) {
	r := ringer{calls: make(chan *Call, 1)}
	_, addr := testServer(t, nil, WithHandler(r))
	c := newRawClient(t, addr)
	invite := guest(request("INVITE", "sip:9196@voxgate", "can1", 1, "Content-Type: application/sdp\n", testOffer))
	c.send(invite)
	var call *Call
	select {
	case call = <-r.calls:
	case <-time.After(3 * time.Second):
		t.Fatal("no call")
	}
	// CANCEL reuses the INVITE's Via branch, Call-ID and CSeq number.
	cancelMsg := strings.Replace(strings.Replace(strings.SplitN(invite, "\nContent-Type", 2)[0], "INVITE sip:", "CANCEL sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1) + "\nContent-Length: 0\n\n"
	c.send(cancelMsg)
	got := map[string]int{}
	for i := 0; i < 2; i++ {
		res := c.final(3 * time.Second)
		got[string(res.CSeq().MethodName)] = res.StatusCode
	}
	if got["CANCEL"] != 200 || got["INVITE"] != 487 {
		t.Fatalf("responses %v, want CANCEL 200 and INVITE 487", got)
	}
	select {
	case <-call.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("CANCEL did not end the call")
	}
	if call.EndReason() != "canceled" {
		t.Fatalf("end reason %q", call.EndReason())
	}
}

// The 200 to a re-INVITE over UDP is sent again (T1, 2T1, ...) until its
// ACK arrives, then no more (RFC 3261 13.3.1.4).
func TestReinvite200RetransmittedUntilACK(t *testing.T) {
	_, addr := testServer(t, nil, WithHandler(&echoHandler{}))
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "re1", 1, "Content-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	tag, _ := res.To().Params.Get("tag")
	inDialog := func(method string, cseq int, extra, body string) string {
		m := guest(request(method, "sip:9196@voxgate", "re1", cseq, extra, body))
		return strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1)
	}
	c.send(strings.Replace(inDialog("ACK", 1, "", ""), "branch=z9hG4bKre11", "branch=z9hG4bKack11", 1))
	hold := strings.Replace(testOffer, "a=sendrecv", "a=sendonly", 1)
	if !strings.Contains(hold, "sendonly") {
		hold += "a=sendonly\r\n"
	}
	c.send(inDialog("INVITE", 2, "Content-Type: application/sdp\n", hold))
	start := time.Now()
	var at []time.Duration
	for len(at) < 3 { // the 200 and two retransmissions, no ACK yet
		res := c.final(3 * time.Second)
		if res.CSeq().SeqNo == 1 {
			continue // a late copy of the first 200
		}
		if res.StatusCode != 200 || res.CSeq().SeqNo != 2 {
			t.Fatalf("re-INVITE: %d for CSeq %d", res.StatusCode, res.CSeq().SeqNo)
		}
		at = append(at, time.Since(start))
	}
	t.Logf("200s at %v", at)
	if at[1] < 400*time.Millisecond || at[2]-at[1] < 800*time.Millisecond {
		t.Fatalf("retransmissions at %v, want about T1 then 2*T1 apart", at)
	}
	c.send(strings.Replace(inDialog("ACK", 2, "", ""), "branch=z9hG4bKre12", "branch=z9hG4bKack12", 1))
	_ = c.conn.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
	buf := make([]byte, 65535)
	if n, _, err := c.conn.ReadFromUDP(buf); err == nil {
		t.Fatalf("after the ACK voxgate still sent:\n%s", buf[:n])
	}
	c.send(inDialog("BYE", 3, "", ""))
}

// An INVITE without SDP (a late offer): voxgate's 200 offers every codec it
// takes, the ACK answers PCMA, and the echo then returns PCMA RTP to the
// address in the answer. An ACK without an answer ends the call with a BYE.
func TestLateOffer(t *testing.T) {
	echo := &echoHandler{}
	_, addr := testServer(t, nil, WithHandler(echo))
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtpConn.Close()
	rtpPort := rtpConn.LocalAddr().(*net.UDPAddr).Port

	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "late1", 1, "", "")))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("late-offer INVITE: %d %s", res.StatusCode, res.Reason)
	}
	offer, err := parseOffer(res.Body(), bothCodecs)
	if err != nil || !strings.Contains(string(res.Body()), "PCMA/8000") || !strings.Contains(string(res.Body()), "PCMU/8000") {
		t.Fatalf("voxgate's offer %v:\n%s", err, res.Body())
	}
	tag, _ := res.To().Params.Get("tag")
	answer := fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", rtpPort)
	ack := guest(request("ACK", "sip:9196@voxgate", "late1", 1, "Content-Type: application/sdp\n", answer))
	ack = strings.Replace(strings.Replace(ack, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1), "branch=z9hG4bKlate11", "branch=z9hG4bKlateack", 1)
	c.send(ack)
	// RTP in; the echo sends it back as PCMA.
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(offer.Addr.Port())}
	buf := make([]byte, 1500)
	got := -1
	for i := 0; i < 50 && got < 0; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 7}, Payload: make([]byte, 160)}
		b, _ := p.Marshal()
		_, _ = rtpConn.WriteToUDP(b, to)
		_ = rtpConn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, _, err := rtpConn.ReadFromUDP(buf); err == nil {
			var back rtp.Packet
			if back.Unmarshal(buf[:n]) == nil {
				got = int(back.PayloadType)
			}
		}
	}
	if got != 8 {
		t.Fatalf("no PCMA RTP back from the echo (payload type %d)", got)
	}
	calls, _ := echo.snapshot()
	if n := calls[0].Codec().Name; n != "PCMA" {
		t.Fatalf("the call's codec is %s, want PCMA from the ACK's answer", n)
	}

	// An ACK without an answer: voxgate hangs up.
	c2 := newRawClient(t, addr)
	c2.send(guest(request("INVITE", "sip:9196@voxgate", "late2", 1, "", "")))
	res = c2.final(3 * time.Second)
	tag, _ = res.To().Params.Get("tag")
	ack = guest(request("ACK", "sip:9196@voxgate", "late2", 1, "", ""))
	c2.send(strings.Replace(strings.Replace(ack, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1), "branch=z9hG4bKlate21", "branch=z9hG4bKlateack2", 1))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		_ = c2.conn.SetReadDeadline(deadline)
		n, _, err := c2.conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if strings.HasPrefix(string(buf[:n]), "BYE ") {
			return
		}
	}
	t.Fatal("no BYE after an ACK without an answer")
}

// Over sip.max_transactions, a request is refused 503 with Retry-After
// (the transactions of answered UDP requests live on for 32 s).
func TestMaxTransactions(t *testing.T) {
	s, addr := testServer(t, func(c *Config) { c.MaxTransactions = 5 })
	c := newRawClient(t, addr)
	for i := 0; i < 5; i++ {
		c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", fmt.Sprintf("tx%d", i), 1, "", ""))
		if res := c.final(3 * time.Second); res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "tx5", 1, "", ""))
	res := c.final(3 * time.Second)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("the sixth request in flight: %d %s", res.StatusCode, res.Reason)
	}
	if st := s.ServerStats(); st.Transactions != 5 || st.Overloaded != 1 {
		t.Fatalf("stats: %d transactions, %d refused", st.Transactions, st.Overloaded)
	}
}
