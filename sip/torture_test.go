package sip

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// Every torture message (RFC 4475 in spirit: valid but unusual, and
// malformed) gets the right answer over UDP and over TCP. The score per
// transport is logged.
func TestTorture(t *testing.T) {
	files, err := filepath.Glob("../testdata/torture/*.sip")
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages: %v", err)
	}
	s, _ := testServer(t, func(c *Config) {
		c.Listen = []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}, {Transport: "tcp", Addr: "127.0.0.1:0"}}
	})
	for _, transport := range []string{"udp", "tcp"} {
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
			code := tortureSend(t, s, transport, string(raw))
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
				t.Errorf("%s over %s: %d, want %s", name, transport, code, want)
			}
		}
		t.Logf("torture score over %s: %d/%d", transport, right, len(files))
	}
}

// tortureSend sends raw (PORT: the sender's port) and returns the final
// status, 0 for none within 3 s.
func tortureSend(t *testing.T, s *Server, transport, raw string) int {
	t.Helper()
	var addr string
	for _, a := range s.Addrs() {
		if (a.Network() == "udp") == (transport == "udp") {
			addr = a.String()
		}
	}
	if transport == "udp" {
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
	c := newTCPClient(t, addr)
	raw = strings.ReplaceAll(raw, "SIP/2.0/UDP", "SIP/2.0/TCP")
	raw = strings.ReplaceAll(raw, "PORT", itoa(c.conn.LocalAddr().(*net.TCPAddr).Port))
	if _, err := c.conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
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
