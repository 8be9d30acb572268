package sip

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// badRequestFilter answers malformed UDP datagrams with 400 and a reason
// before sipgo sees them (sipgo drops what it cannot parse, silently). It is
// a sipgo transport read filter: it returns the bytes to hand on, or nil.
type badRequestFilter struct {
	log      *slog.Logger
	parser   *sip.Parser
	mu       sync.Mutex
	conns    map[string]net.PacketConn // by local address
	counters *counters
	// wsReply writes a response down a WebSocket (ws.go).
	wsReply func(peer string, raw []byte)
}

func (f *badRequestFilter) addConn(c net.PacketConn) {
	f.mu.Lock()
	f.conns[c.LocalAddr().String()] = c
	f.mu.Unlock()
}

func (f *badRequestFilter) filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if len(bytes.Trim(data, "\r\n")) == 0 {
		return data, nil
	}
	if p.Transport == "WS" {
		return f.filterWS(p, data) // ws.go
	}
	if p.Transport != "UDP" {
		return data, nil
	}
	code, reason := checkMessage(f.parser, data)
	if code == 0 {
		return data, nil
	}
	f.log.Info("malformed request", "source", p.RemoteAddr, "reason", reason)
	f.counters.malformed.Add(1)
	f.counters.response(code)
	if res := rawResponse(data, code, reason); res != nil {
		f.mu.Lock()
		c := f.conns[p.LocalAddr.String()]
		f.mu.Unlock()
		if c != nil {
			_, _ = c.WriteTo(res, p.RemoteAddr)
		}
	}
	return nil, nil
}

// checkMessage returns the status and reason a message must be refused
// with (400, or 505 for another SIP version), or 0 when it may go on: it
// parses, its header section holds no NUL byte, and a request has the
// headers RFC 3261 requires, each once.
func checkMessage(parser *sip.Parser, data []byte) (int, string) {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	if f := bytes.Fields(line); len(f) == 3 && bytes.HasPrefix(f[2], []byte("SIP/")) && !bytes.Equal(f[2], []byte("SIP/2.0")) {
		return 505, "Version Not Supported"
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return 400, "Bad Request (NUL byte in the headers)"
	}
	msg, err := parser.ParseSIP(data)
	if err != nil {
		return 400, "Bad Request (" + shortErr(err) + ")"
	}
	if req, ok := msg.(*sip.Request); ok {
		if reason := missingHeader(req); reason != "" {
			return 400, reason
		}
		if reason := duplicateTag(head); reason != "" {
			return 400, reason
		}
	}
	return 0, ""
}

// duplicateTag finds a From or To header with two tag parameters. It
// allocates nothing but its answer.
func duplicateTag(head []byte) string {
	for len(head) > 0 {
		var l []byte
		l, head, _ = bytes.Cut(head, []byte("\r\n"))
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		which := ""
		switch name = bytes.TrimSpace(name); {
		case bytes.EqualFold(name, []byte("from")) || bytes.EqualFold(name, []byte("f")):
			which = "From"
		case bytes.EqualFold(name, []byte("to")) || bytes.EqualFold(name, []byte("t")):
			which = "To"
		default:
			continue
		}
		if countTagParams(value) > 1 {
			return "Bad Request (two tags in " + which + ")"
		}
	}
	return ""
}

// countTagParams counts ";tag=" in v, in any case.
func countTagParams(v []byte) int {
	n := 0
	for i := 0; i+5 <= len(v); i++ {
		if v[i] == ';' && bytes.EqualFold(v[i+1:i+5], []byte("tag=")) {
			n++
		}
	}
	return n
}

func shortErr(err error) string {
	s := err.Error()
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// missingHeader checks the headers RFC 3261 section 8.1.1 makes mandatory.
func missingHeader(req *sip.Request) string {
	switch {
	case req.Via() == nil:
		return "Bad Request (missing Via)"
	case req.From() == nil:
		return "Bad Request (missing From)"
	case req.To() == nil:
		return "Bad Request (missing To)"
	case req.CallID() == nil || *req.CallID() == "":
		return "Bad Request (missing Call-ID)"
	case req.CSeq() == nil:
		return "Bad Request (missing CSeq)"
	case !strings.EqualFold(strings.TrimSpace(string(req.CSeq().MethodName)), string(req.Method)):
		return "Bad Request (CSeq method does not match)"
	}
	if !txKeyable(req) {
		return "Bad Request (malformed Via)"
	}
	return ""
}

// rawResponse builds a final answer (400, 413) from the raw bytes of a
// request that did not parse, copying the headers a response needs (RFC 3261
// section 8.2.6.2). It returns nil when the bytes are not a request or have
// no Via.
func rawResponse(data []byte, code int, reason string) []byte {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	if len(lines) == 0 || len(strings.Fields(lines[0])) != 3 || !strings.HasPrefix(strings.Fields(lines[0])[2], "SIP/") || strings.HasPrefix(lines[0], "SIP/") {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	haveVia := false
	for _, l := range lines[1:] {
		name, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			haveVia = true
			b.WriteString(l + "\r\n")
		case "from", "f", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		case "to", "t":
			if !strings.Contains(l, "tag=") {
				l += ";tag=" + sip.GenerateTagN(10)
			}
			b.WriteString(l + "\r\n")
		}
	}
	if !haveVia {
		return nil
	}
	b.WriteString("Server: voxgate\r\nContent-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// txKeyable says whether sipgo can key a server transaction for req
// (sip.ServerTxKeyMake succeeds), without building the key: a Via and a
// CSeq (checked before), and either an RFC 3261 branch in the top Via or,
// for an RFC 2543 peer, a From tag.
func txKeyable(req *sip.Request) bool {
	if b, ok := req.Via().Params.Get("branch"); ok && len(b) > len(sip.RFC3261BranchMagicCookie) &&
		strings.HasPrefix(b, sip.RFC3261BranchMagicCookie) {
		return true
	}
	_, ok := req.From().Params.Get("tag")
	return ok
}
