package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// wsServer serves s's WebSocket handler on /sip of a test HTTP server.
func wsServer(t *testing.T, s *Server) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /sip", s.WebSocketHandler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/sip"
}

// wsClient is a browser-like SIP over WebSocket client (RFC 7118).
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	cseq int
}

func dialWS(t *testing.T, url string) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second}
	c, res, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if got := res.Header.Get("Sec-WebSocket-Protocol"); got != "sip" {
		t.Fatalf("the server chose subprotocol %q, want sip", got)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{t: t, conn: c}
}

func (c *wsClient) send(msg string) {
	c.t.Helper()
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// final reads frames until a final response; err is the read error (the
// connection closed) when none came.
func (c *wsClient) final() (*sip.Response, error) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		typ, b, err := c.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != websocket.TextMessage {
			c.t.Fatalf("a frame of type %d, want text (RFC 7118 5.1)", typ)
		}
		msg, err := sip.ParseMessage(b)
		if err != nil {
			c.t.Fatalf("unparsable frame: %v\n%s", err, b)
		}
		if res, ok := msg.(*sip.Response); ok && !res.IsProvisional() {
			return res, nil
		}
	}
}

// wsRequest is a request as JsSIP writes it: Via WSS with a .invalid host,
// Contact ;transport=ws.
func wsRequest(method, ruri, callID string, cseq int, extra, body string) string {
	return fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK%s%d%d\n"+
		"Max-Forwards: 69\nTo: <sip:alice@voxgate>\nFrom: <sip:alice@voxgate>;tag=ft%s\nCall-ID: %s\nCSeq: %d %s\n"+
		"Contact: <sip:h4k2pd9f@df7jal23ls0d.invalid;transport=ws>;expires=600\n%sContent-Length: %d\n\n%s",
		method, ruri, callID, cseq, time.Now().UnixNano(), callID, callID, cseq, method, extra, len(body), body)
}

// register registers alice over c with digest auth and returns the status.
func (c *wsClient) register(callID, password string) int {
	c.t.Helper()
	c.cseq++
	c.send(wsRequest("REGISTER", "sip:voxgate", callID, c.cseq, "", ""))
	res, err := c.final()
	if err != nil {
		c.t.Fatalf("no answer to REGISTER: %v", err)
	}
	if res.StatusCode != 401 {
		return res.StatusCode
	}
	c.cseq++
	auth := digestHeader(c.t, res.GetHeader("WWW-Authenticate").Value(), "REGISTER", "sip:voxgate", "alice", password)
	c.send(wsRequest("REGISTER", "sip:voxgate", callID, c.cseq, "Authorization: "+auth+"\n", ""))
	if res, err = c.final(); err != nil {
		c.t.Fatalf("no answer to REGISTER: %v", err)
	}
	return res.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The handshake: a plain GET gets 426, an upgrade without the subprotocol
// sip gets 400, each with a reason a person can read.
func TestWSHandshakeRefusals(t *testing.T) {
	s, _ := testServer(t, nil)
	url := wsServer(t, s)
	res, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("a plain GET got %d, want 426", res.StatusCode)
	}
	for _, proto := range [][]string{nil, {"chat"}} {
		_, res, err := (&websocket.Dialer{Subprotocols: proto}).Dial(url, nil)
		if err == nil {
			t.Fatalf("an upgrade offering %v was accepted", proto)
		}
		if res == nil || res.StatusCode != http.StatusBadRequest {
			t.Fatalf("an upgrade offering %v: %v, want 400", proto, err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		if !strings.Contains(b.String(), `subprotocol "sip"`) {
			t.Errorf("the 400 says %q", b.String())
		}
	}
	// A SIP server not started yet answers 503.
	idle, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}}, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, res, err := (&websocket.Dialer{Subprotocols: []string{"sip"}}).Dial(wsServer(t, idle), nil); err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a server not started: %v, want 503", err)
	}
}

// A browser registers over its WebSocket with digest auth; the binding
// names the connection (transport WS, its address) and goes when the
// connection closes.
func TestWSRegisterAndDropOnClose(t *testing.T) {
	s, _ := testServer(t, nil)
	c := dialWS(t, wsServer(t, s))
	if code := c.register("ws-reg-1", "wrong"); code != 401 && code != 403 {
		t.Fatalf("a wrong password got %d", code)
	}
	if code := c.register("ws-reg-2", "alice-secret"); code != 200 {
		t.Fatalf("REGISTER over WebSocket got %d", code)
	}
	bs := s.Bindings("alice")
	if len(bs) != 1 || bs[0].Transport != "WS" || !strings.Contains(bs[0].Contact, "transport=ws") {
		t.Fatalf("bindings %+v", bs)
	}
	if bs[0].Source != c.conn.LocalAddr().String() {
		t.Errorf("the binding is reached at %s, not the connection's %s", bs[0].Source, c.conn.LocalAddr())
	}
	// OPTIONS is answered down the connection.
	c.send(wsRequest("OPTIONS", "sip:voxgate", "ws-opt", 1, "", ""))
	if res, err := c.final(); err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS over WebSocket: %v %v", res, err)
	}
	c.conn.Close()
	waitFor(t, "the binding to go with its WebSocket", func() bool { return len(s.Bindings("alice")) == 0 })
}

// Bad input over a WebSocket: a malformed request is answered 400 with the
// reason and the connection goes on; a frame that is not SIP at all closes
// its connection only; another browser's connection is undisturbed.
func TestWSBadInput(t *testing.T) {
	s, _ := testServer(t, nil)
	url := wsServer(t, s)
	other := dialWS(t, url)
	if code := other.register("ws-other", "alice-secret"); code != 200 {
		t.Fatalf("REGISTER got %d", code)
	}
	c := dialWS(t, url)
	noCallID := strings.Replace(wsRequest("OPTIONS", "sip:voxgate", "x", 1, "", ""), "Call-ID: x\n", "", 1)
	c.send(noCallID)
	res, err := c.final()
	if err != nil {
		t.Fatalf("no answer to a request without Call-ID: %v", err)
	}
	if res.StatusCode != 400 || !strings.Contains(res.Reason, "Call-ID") {
		t.Errorf("a request without Call-ID got %d %q", res.StatusCode, res.Reason)
	}
	c.send(wsRequest("OPTIONS", "sip:voxgate", "after-bad", 1, "", ""))
	if res, err := c.final(); err != nil || res.StatusCode != 200 {
		t.Fatalf("the connection did not go on after a 400: %v %v", res, err)
	}
	c.send("\x00\x01 this is not SIP \xff")
	if _, err := c.final(); err == nil {
		t.Fatal("a frame of garbage got an answer; the connection should close")
	}
	other.send(wsRequest("OPTIONS", "sip:voxgate", "other-ok", 1, "", ""))
	if res, err := other.final(); err != nil || res.StatusCode != 200 {
		t.Fatalf("another connection was disturbed: %v %v", res, err)
	}
	if len(s.Bindings("alice")) != 1 {
		t.Errorf("the other browser's binding went: %+v", s.Bindings("alice"))
	}
}

// A call to a user registered over a WebSocket goes down that connection
// (its Contact's .invalid host cannot be reached any other way); without a
// WebRTC implementation the INVITE carries voxgate's plain offer.
func TestWSCallGoesDownTheConnection(t *testing.T) {
	s, _ := testServer(t, nil)
	c := dialWS(t, wsServer(t, s))
	if code := c.register("ws-call", "alice-secret"); code != 200 {
		t.Fatalf("REGISTER got %d", code)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.DialUser(t.Context(), "alice", "bob")
		errc <- err
	}()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		t.Fatalf("no INVITE down the WebSocket: %v", err)
	}
	msg, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	inv, ok := msg.(*sip.Request)
	if !ok || inv.Method != sip.INVITE {
		t.Fatalf("got %s", b)
	}
	if !strings.Contains(inv.Recipient.String(), ".invalid") {
		t.Errorf("the INVITE's Request-URI is %s, want the registered Contact", inv.Recipient.String())
	}
	res := sip.NewResponseFromRequest(inv, 486, "Busy Here", nil)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(res.String())); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		var rj *Rejection
		if err == nil || !asRejection(err, &rj) || rj.Status != 486 {
			t.Fatalf("the dial ended with %v, want the browser's 486", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dial did not end")
	}
}

// FuzzWSFilter feeds the WebSocket message check arbitrary frames: it never
// panics, passes only what checkMessage accepts, and either answers a
// malformed request or refuses the frame.
func FuzzWSFilter(f *testing.F) {
	f.Add([]byte(wsRequest("OPTIONS", "sip:voxgate", "a", 1, "", "")))
	f.Add([]byte(strings.Replace(wsRequest("OPTIONS", "sip:voxgate", "a", 1, "", ""), "Call-ID: a\n", "", 1)))
	f.Add([]byte("INVITE sip:x SIP/3.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\n\r\n"))
	f.Add([]byte("\x00garbage"))
	f.Add([]byte("SIP/2.0 200 OK\r\n\r\n"))
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		var replied []byte
		filt := &badRequestFilter{log: quietLogger(), parser: p, counters: newCounters(),
			wsReply: func(_ string, raw []byte) { replied = raw }}
		props := sip.TransportReadProps{Transport: "WS", RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
		out, err := filt.filterWS(props, data)
		code, _ := checkMessage(p, data)
		switch {
		case code == 0:
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("an acceptable message was refused: %v", err)
			}
		case err == nil:
			if out != nil || replied == nil {
				t.Fatalf("a malformed message was neither answered nor refused")
			}
			// The answer echoes the request's Via, From, To, Call-ID and
			// CSeq as they came (rawResponse), under a status line of its own.
			if !bytes.HasPrefix(replied, fmt.Appendf(nil, "SIP/2.0 %d ", code)) {
				t.Fatalf("the answer is %q, want a %d", replied, code)
			}
		}
	})
}

// WebSocket connections count under sip.stream's caps, as TCP ones do: one
// over max_per_source is refused and counted.
func TestWSConnectionCaps(t *testing.T) {
	s, _ := testServer(t, func(c *Config) { c.Stream.MaxPerSource = 1 })
	url := wsServer(t, s)
	first := dialWS(t, url)
	if code := first.register("ws-cap", "alice-secret"); code != 200 {
		t.Fatalf("REGISTER got %d", code)
	}
	c, _, err := (&websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second}).Dial(url, nil)
	if err == nil {
		c.Close()
		t.Fatal("a second connection from the same address was accepted")
	}
	if got := s.ServerStats().ConnectionsRefused; got != 1 {
		t.Errorf("%d connections counted refused, want 1", got)
	}
	if st := s.ServerStats(); st.Connections != 1 {
		t.Errorf("%d connections counted open, want 1", st.Connections)
	}
}

// answerOne reads the next request from the server and answers it with code.
func (c *wsClient) answerOne(code int) *sip.Request {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("no request down the WebSocket: %v", err)
	}
	msg, err := sip.ParseMessage(b)
	if err != nil {
		c.t.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		c.t.Fatalf("got %s", b)
	}
	res := sip.NewResponseFromRequest(req, code, "OK", nil)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(res.String())); err != nil {
		c.t.Fatal(err)
	}
	return req
}

// A contact registered over a WebSocket is qualified over it: the OPTIONS
// goes down the connection and its answer counts.
func TestWSQualifyContact(t *testing.T) {
	s, _ := testServer(t, nil)
	c := dialWS(t, wsServer(t, s))
	if code := c.register("ws-qual", "alice-secret"); code != 200 {
		t.Fatalf("REGISTER got %d", code)
	}
	b := s.Bindings("alice")[0]
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		t.Fatal(err)
	}
	overConnection(&uri, b)
	errc := make(chan error, 1)
	go func() {
		_, err := s.probe(t.Context(), uri, b.Source, sourceTransport(b), 5*time.Second)
		errc <- err
	}()
	if req := c.answerOne(200); req.Method != sip.OPTIONS {
		t.Fatalf("got %s, want OPTIONS", req.Method)
	}
	if err := <-errc; err != nil {
		t.Fatalf("the probe over the WebSocket failed: %v", err)
	}
}

// A call a browser placed over its WebSocket: voxgate's BYE goes down the
// connection (the caller's Contact has a .invalid host).
func TestWSByeToCaller(t *testing.T) {
	answered := make(chan struct{})
	s, _ := testServer(t, nil, WithHandler(HandlerFunc(func(ctx context.Context, c *Call) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		close(answered)
		<-ctx.Done()
	})))
	c := dialWS(t, wsServer(t, s))
	inv := wsRequest("INVITE", "sip:9196@voxgate", "ws-bye", 1, "Content-Type: application/sdp\n", testOffer)
	c.send(strings.Replace(inv, "From: <sip:alice@voxgate>", "From: <sip:carol@voxgate>", 1)) // a guest: no digest
	res, err := c.final()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE over WebSocket: %v %v", res, err)
	}
	ack := fmt.Sprintf("ACK sip:voxgate@127.0.0.1 SIP/2.0\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKack%d\nMax-Forwards: 69\n"+
		"To: %s\nFrom: <sip:carol@voxgate>;tag=ftws-bye\nCall-ID: ws-bye\nCSeq: 1 ACK\nContent-Length: 0\n\n", time.Now().UnixNano(), res.To().String())
	c.send(ack)
	<-answered
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.hangupAll()
	}()
	if req := c.answerOne(200); req.Method != sip.BYE {
		t.Fatalf("got %s, want BYE", req.Method)
	}
	<-done
}
