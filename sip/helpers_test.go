package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testServer starts a Server on a random UDP port of 127.0.0.1.
func testServer(t testing.TB, mutate func(*Config), opts ...Option) (*Server, string) {
	t.Helper()
	cfg := Config{
		Listen:   []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		RTPPorts: "31000-31999",
		Guard:    GuardConfig{SlowAfter: 3, BanAfter: 6, Delay: time.Millisecond},
		Codecs:   []string{"pcmu", "pcma"}, // the tests' phones read and write G.711 frames
	}
	if mutate != nil {
		mutate(&cfg)
	}
	opts = append([]Option{WithLogger(quietLogger()), WithUsers(NewUsers(
		User{Name: "alice", Password: "alice-secret"},
		User{Name: "bob", HA1: hashHex("MD5", "bob:voxgate:bob-secret")},
	))}, opts...)
	s, err := NewServer(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, s.Addrs()[0].String()
}

// rawClient talks SIP over a UDP socket with hand-written messages.
type rawClient struct {
	t    testing.TB
	conn *net.UDPConn
	srv  *net.UDPAddr
}

func newRawClient(t testing.TB, addr string) *rawClient {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, srv: ua}
}

func (c *rawClient) port() int { return c.conn.LocalAddr().(*net.UDPAddr).Port }

func (c *rawClient) send(msg string) {
	c.t.Helper()
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	msg = fillPort(msg, c.port())
	if _, err := c.conn.WriteToUDP([]byte(msg), c.srv); err != nil {
		c.t.Fatal(err)
	}
}

// final waits for a final (non-1xx) response.
func (c *rawClient) final(timeout time.Duration) *sip.Response {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			c.t.Fatalf("no final response: %v", err)
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			c.t.Fatalf("unparsable response: %v\n%s", err, buf[:n])
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.IsProvisional() {
			continue
		}
		return res
	}
}

// fillPort puts port where a message written by request says ":PORT". Only
// after a colon: a nonce (unpadded base64url, which has no colon) may
// contain the letters PORT, and changing it made the server answer a
// challenge instead (BenchmarkRegisterServer failed about once in 600,000
// REGISTERs, one in 64^4 per position of the nonce).
func fillPort(msg string, port int) string {
	return strings.ReplaceAll(msg, ":PORT", ":"+strconv.Itoa(port))
}

// request builds a request with the mandatory headers.
func request(method, ruri, callID string, cseq int, extra string, body string) string {
	m := fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK%s%d;rport\n"+
		"From: <sip:alice@voxgate>;tag=ft%s\nTo: <sip:%s>\nCall-ID: %s\nCSeq: %d %s\nMax-Forwards: 70\n"+
		"Contact: <sip:alice@127.0.0.1:PORT>\n%sContent-Length: %d\n\n%s",
		method, ruri, callID, cseq, callID, strings.TrimPrefix(ruri, "sip:"), callID, cseq, method, extra, len(body), body)
	return m
}

// digestHeader computes an Authorization value answering challenge for user.
func digestHeader(t testing.TB, challenge, method, uri, user, password string) string {
	t.Helper()
	p, err := parseAuthParams(strings.TrimPrefix(challenge, "Digest "))
	if err != nil {
		t.Fatal(err)
	}
	algo := p["algorithm"]
	if algo == "" {
		algo = "MD5"
	}
	ha1 := hashHex(algo, user+":"+p["realm"]+":"+password)
	c := Credentials{Username: user, Realm: p["realm"], Nonce: p["nonce"], URI: uri, QOP: "auth", NC: "00000001", CNonce: "abc123", Algorithm: algo}
	resp := expectedResponse(algo, ha1, method, c)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="abc123"`,
		user, p["realm"], p["nonce"], uri, resp, algo)
}

const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"

// syncWriter collects a child process's output while the test reads it.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// parseAuthParams parses (for the tests: a challenge, or credentials the
// way they were read before the allocation-free reading) a comma-separated list of name=value or
// name="quoted value" pairs (RFC 7235 auth-param).
func parseAuthParams(s string) (map[string]string, error) {
	out := make(map[string]string, 10)
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' {
			i++
		}
		name := strings.ToLower(s[start:i])
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] != '=' || name == "" {
			return nil, ErrBadCredentials
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return nil, ErrBadCredentials
			}
			val = b.String()
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' {
				i++
			}
			val = s[start:i]
		}
		out[name] = val
	}
	return out, nil
}

// fillPort changes the port placeholders only, not the letters PORT in a
// nonce or anywhere else.
func TestFillPort(t *testing.T) {
	in := "Via: SIP/2.0/UDP 127.0.0.1:PORT;rport\nContact: <sip:alice@127.0.0.1:PORT>\n" +
		`Authorization: Digest nonce="xPORTy-PORT_", response="PORT"` + "\n"
	want := "Via: SIP/2.0/UDP 127.0.0.1:5099;rport\nContact: <sip:alice@127.0.0.1:5099>\n" +
		`Authorization: Digest nonce="xPORTy-PORT_", response="PORT"` + "\n"
	if got := fillPort(in, 5099); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
