package sip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SIP over WebSocket (RFC 7118) for browser softphones (JsSIP, SIP.js).
//
// The web server owns the port: WebSocketHandler is mounted on its /sip
// path and checks the handshake (a WebSocket upgrade offering the
// subprotocol "sip"); then it takes the connection over from net/http and
// hands it, with the handshake request replayed in front of it, to sipgo's
// WS transport through wsListener. sipgo completes the handshake and reads
// and writes SIP messages as WebSocket text frames; everything above the
// transport (transactions, the registrar, digest auth, calls) is the same as
// for TCP. A user registered over a WebSocket is reached over that
// connection (overConnection); its bindings go when the connection closes.

// WSSubprotocol is the WebSocket subprotocol of SIP (RFC 7118 section 4.1).
const WSSubprotocol = "sip"

// wsListener is a net.Listener fed with the connections WebSocketHandler
// took over from the web server; sipgo's ServeWS accepts from it.
type wsListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newWSListener() *wsListener {
	return &wsListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// hand gives c to the accepting transport; false once the listener closed.
func (l *wsListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr has no port of its own: the web server's port carries it.
func (l *wsListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

// wsConn is one browser's connection, taken over from the web server: its
// reads start with the replayed handshake request. Its close drops the
// bindings registered over it.
type wsConn struct {
	net.Conn
	r       io.Reader
	onClose func()
	once    sync.Once
}

func (c *wsConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *wsConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// WebSocketHandler serves SIP over WebSocket (RFC 7118): mount it on the
// web server (webclient mounts it on /sip). A request that is not a
// WebSocket upgrade gets 426, one that does not offer the subprotocol "sip"
// gets 400, a banned source 403; each with a plain-text reason. TLS (wss) is
// the web server's: the connection arrives decrypted.
func (s *Server) WebSocketHandler() http.Handler { return http.HandlerFunc(s.serveWS) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "SIP over WebSocket (RFC 7118): connect with a WebSocket client offering the subprotocol \"sip\"", http.StatusUpgradeRequired)
		return
	}
	if !headerHasToken(r.Header, "Sec-WebSocket-Protocol", WSSubprotocol) {
		s.log.Info("sip: WebSocket refused: subprotocol sip not offered", "peer", r.RemoteAddr, "offered", r.Header.Get("Sec-WebSocket-Protocol"))
		http.Error(w, "SIP over WebSocket needs the WebSocket subprotocol \"sip\" (Sec-WebSocket-Protocol: sip, RFC 7118)", http.StatusBadRequest)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if s.guard.Banned(host) {
		http.Error(w, "Forbidden (too many failed authentications)", http.StatusForbidden)
		return
	}
	if !s.wsServing.Load() {
		http.Error(w, "SIP is not running", http.StatusServiceUnavailable)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "SIP over WebSocket needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		s.log.Warn("sip: WebSocket: taking over the connection failed", "peer", r.RemoteAddr, "error", err)
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the web server's timeouts are for HTTP
	c := &wsConn{Conn: conn, r: io.MultiReader(bytes.NewReader(replayHandshake(r)), pending(rw.Reader), conn)}
	peer := conn.RemoteAddr().String()
	c.onClose = func() { s.wsClosed(peer) }
	if !s.wsln.hand(c) {
		_ = conn.Close()
		return
	}
	s.log.Debug("sip: WebSocket connected", "peer", peer)
}

// replayHandshake writes r back as the handshake request sipgo's upgrader
// reads (net/http has consumed it); the upgrader answers 101 with the
// subprotocol sip.
func replayHandshake(r *http.Request) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", r.URL.RequestURI(), r.Host)
	_ = r.Header.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// pending is what the web server had already read past the request.
func pending(br *bufio.Reader) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return bytes.NewReader(nil)
	}
	p, _ := br.Peek(n)
	return bytes.NewReader(append([]byte(nil), p...))
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsClosed drops the bindings registered over the connection from peer:
// nothing can reach them any more (RFC 7118 section 5: the Contact of a
// browser is not reachable otherwise).
func (s *Server) wsClosed(peer string) {
	for _, b := range s.location.dropConn("WS", peer) {
		s.log.Info("unregistered: its WebSocket closed", "user", b.AOR, "source", "ws:"+peer)
	}
}

// dropConn removes the bindings registered over transport from source and
// returns them.
func (l *location) dropConn(transport, source string) []Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gone []Binding
	for user, bs := range l.aor {
		var keep []Binding
		for _, b := range bs {
			if b.Source == source && strings.EqualFold(b.Transport, transport) {
				gone = append(gone, b)
				continue
			}
			keep = append(keep, b)
		}
		if len(keep) == len(bs) {
			continue
		}
		l.written(user, bs, keep)
		if len(keep) == 0 {
			delete(l.aor, user)
		} else {
			l.aor[user] = keep
		}
	}
	return gone
}

// errWSGarbage closes a WebSocket whose message is not SIP at all.
var errWSGarbage = errors.New("not a SIP message")

// filterWS checks a message that came over a WebSocket as UDP datagrams
// are checked (checkMessage): a malformed request is answered 400 (505
// for another SIP version) down its connection, which goes on; a message
// that cannot be answered (no Via, not SIP) closes the connection.
func (f *badRequestFilter) filterWS(p sip.TransportReadProps, data []byte) ([]byte, error) {
	code, reason := checkMessage(f.parser, data)
	if code == 0 {
		return data, nil
	}
	f.counters.malformed.Add(1)
	res := rawResponse(data, code, reason)
	if res == nil || f.wsReply == nil {
		f.log.Info("malformed message over WebSocket; connection closed", "source", "ws:"+p.RemoteAddr.String(), "reason", reason)
		return nil, errWSGarbage
	}
	f.log.Info("malformed request", "source", "ws:"+p.RemoteAddr.String(), "reason", reason)
	f.counters.response(code)
	f.wsReply(p.RemoteAddr.String(), res)
	return nil, nil
}

// wsReply writes raw, a response, down the WebSocket from peer (a frame of
// its own, through sipgo's connection, which serialises writes).
func (s *Server) wsReply(peer string, raw []byte) {
	c, err := s.ua.TransportLayer().GetConnection("ws", peer)
	if err != nil {
		return
	}
	defer func() { _, _ = c.TryClose() }()
	w, ok := c.(io.Writer) // sipgo's WS connection writes one text frame per call
	if !ok {
		return
	}
	if _, err := w.Write(raw); err != nil {
		s.log.Debug("sip: WebSocket reply failed", "peer", peer, "error", err)
	}
}

// isWS reports whether a transport name is SIP over WebSocket.
func isWS(transport string) bool {
	return strings.EqualFold(transport, "ws") || strings.EqualFold(transport, "wss")
}

// wsDialogUA is the dialog side of calls to a browser over its WebSocket:
// requests go out by the client not bound to the UDP port (as over TLS) and,
// within the dialog, to where the answer came from (its connection).
func (s *Server) wsDialogUA() sipgo.DialogUA {
	contact := sip.ContactHeader{Address: s.contact.Address}
	contact.Address.UriParams = sip.NewParams()
	contact.Address.UriParams.Add("transport", "ws")
	return sipgo.DialogUA{Client: s.tlsClient, ContactHDR: contact, RewriteContact: true}
}
