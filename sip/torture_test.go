package sip

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tortureExpect is what each message of ../testdata/torture must get: a
// status, or "ok" (a valid request: any final answer but 400 or 5xx),
// or "answered" (any final answer).
var tortureExpect = map[string]string{
	"valid-folded":           "ok",
	"valid-folded-via":       "ok",
	"valid-mixed-case":       "ok",
	"valid-compact":          "ok",
	"valid-escaped-ruri":     "ok",
	"valid-unknown-header":   "ok",
	"valid-whitespace":       "ok",
	"valid-cseq-method-case": "ok",
	"valid-sdp-unusual":      "ok",
	"bad-no-call-id":         "400",
	"bad-no-from":            "400",
	"bad-no-to":              "400",
	"bad-no-cseq":            "400",
	"bad-cseq-nonnumeric":    "400",
	"bad-cseq-method":        "400",
	"bad-nul-in-header":      "400",
	"bad-two-to-tags":        "400",
	"bad-unterminated-quote": "400",
	"bad-contact-scheme":     "answered",
	"bad-negative-length":    "400",
	"bad-version":            "505",
}

// tortureTransport is one way to deliver a torture message: the listener
// it needs and how to send one message and read its final status (0: none
// within 3 s). WebSocket needs no listener: it is served on the web
// server's /sip, here a test HTTP server, and addr is its URL.
type tortureTransport struct {
	name     string
	listener string // the sip.listen transport the server needs ("": none)
	send     func(t *testing.T, addr, raw string) int
}

// tortureTransports are the transports every torture message is sent over.
func tortureTransports(roots *x509.CertPool) []tortureTransport {
	return []tortureTransport{
		{"udp", "udp", tortureUDP},
		{"tcp", "tcp", func(t *testing.T, addr, raw string) int {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return tortureStream(t, c, "TCP", raw)
		}},
		{"tls", "tls", func(t *testing.T, addr, raw string) int {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			return tortureStream(t, c, "TLS", raw)
		}},
		{"ws", "", tortureWS},
	}
}

// Every torture message (RFC 4475 in spirit: valid but unusual, and
// malformed) gets the same right answer over every transport (UDP, TCP,
// TLS, WebSocket). The score per transport is logged.
func TestTorture(t *testing.T) {
	files, err := filepath.Glob("../testdata/torture/*.sip")
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages: %v", err)
	}
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "voxgate")
	transports := tortureTransports(ca.pool())
	s, _ := testServer(t, func(c *Config) {
		c.Listen = nil
		for _, tr := range transports {
			if tr.listener != "" {
				c.Listen = append(c.Listen, Listener{Transport: tr.listener, Addr: "127.0.0.1:0"})
			}
		}
		c.TLSCert, c.TLSKey = cert, key
	})
	wsURL := wsServer(t, s)
	answers := map[string]map[string]int{} // message -> transport -> status
	for i, tr := range transports {
		addr := wsURL
		if tr.listener != "" {
			addr = s.Addrs()[i].String()
		}
		right := 0
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".sip")
			want, ok := tortureExpect[name]
			if !ok {
				t.Errorf("%s has no expectation", name)
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code := tr.send(t, addr, string(raw))
			if answers[name] == nil {
				answers[name] = map[string]int{}
			}
			answers[name][tr.name] = code
			good := false
			switch want {
			case "ok":
				good = code >= 200 && code < 500 && code != 400
			case "answered":
				good = code >= 200
			default:
				good = want == itoa(code)
			}
			if good {
				right++
			} else {
				t.Errorf("%s over %s: %d, want %s", name, tr.name, code, want)
			}
		}
		t.Logf("torture score over %s: %d/%d", tr.name, right, len(files))
	}
	for name, byTransport := range answers { // the same answer everywhere
		first := byTransport[transports[0].name]
		for tp, code := range byTransport {
			if code != first {
				t.Errorf("%s: %d over %s but %d over %s", name, code, tp, first, transports[0].name)
			}
		}
	}
}

// tortureUDP sends raw (PORT: the sender's port) over UDP.
func tortureUDP(t *testing.T, addr, raw string) int {
	c := newRawClient(t, addr)
	if _, err := c.conn.WriteToUDP([]byte(strings.ReplaceAll(raw, "PORT", itoa(c.port()))), c.srv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			return 0
		}
		if code := statusOf(string(buf[:n])); code >= 200 {
			return code
		}
	}
}

// tortureStream sends raw over a stream connection (TCP or TLS), its Via
// naming that transport, and closes the connection afterwards.
func tortureStream(t *testing.T, conn net.Conn, via, raw string) int {
	t.Cleanup(func() { conn.Close() })
	c := &tcpClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
	raw = strings.ReplaceAll(raw, "SIP/2.0/UDP", "SIP/2.0/"+via)
	raw = strings.ReplaceAll(raw, "PORT", itoa(conn.LocalAddr().(*net.TCPAddr).Port))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		res, err := c.next(3 * time.Second)
		if err != nil {
			return 0
		}
		if res.StatusCode >= 200 {
			return res.StatusCode
		}
	}
}

// tortureWS sends raw as one WebSocket text frame (RFC 7118), its Via
// naming WS, and reads frames until a final answer. A frame that is not
// SIP at all closes the connection: that is no answer (0).
func tortureWS(t *testing.T, url, raw string) int {
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	defer conn.Close()
	raw = strings.ReplaceAll(raw, "SIP/2.0/UDP", "SIP/2.0/WS")
	raw = strings.ReplaceAll(raw, "PORT", itoa(conn.LocalAddr().(*net.TCPAddr).Port))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return 0
		}
		if code := statusOf(string(b)); code >= 200 {
			return code
		}
	}
}

// statusOf reads the status code of a response's first line.
func statusOf(msg string) int {
	line, _, _ := strings.Cut(msg, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0
	}
	n := 0
	for _, ch := range f[1] {
		n = n*10 + int(ch-'0')
	}
	return n
}
