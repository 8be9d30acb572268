package sip

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Header helpers for the REGISTER path that read a request without building
// intermediate values. sipgo's GetHeader and GetHeaders lower-case every
// header name they pass that is not one of its own (Authorization, Expires,
// User-Agent...), one allocation each, and GetHeaders builds a slice; these
// compare names in place.

// headerList is a request or a response.
type headerList interface{ Headers() []sip.Header }

// headerNamed returns the first header of m called name (ASCII
// case-insensitive, as sipgo's GetHeader matches), or nil.
func headerNamed(m headerList, name string) sip.Header {
	for _, h := range m.Headers() {
		if asciiEqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// headerValueOf is the value of m's first header called name, or "".
func headerValueOf(m headerList, name string) string {
	if h := headerNamed(m, name); h != nil {
		return h.Value()
	}
	return ""
}

// countHeaders is how many headers of m are called name.
func countHeaders(m headerList, name string) int {
	n := 0
	for _, h := range m.Headers() {
		if asciiEqualFold(h.Name(), name) {
			n++
		}
	}
	return n
}

// asciiEqualFold reports whether a and b are equal but for the case of
// ASCII letters.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// uriBuffers are where uriString writes a URI.
var uriBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// uriString is u.String() written into a kept buffer: one allocation for
// the string (and sipgo's for the port) instead of a growing builder's.
func uriString(u *sip.Uri) string {
	b := uriBuffers.Get().(*bytes.Buffer)
	b.Reset()
	u.StringWrite(b)
	s := b.String()
	if b.Cap() <= 4096 {
		uriBuffers.Put(b)
	}
	return s
}

// contactValue is the value of a 200's Contact header for a binding:
// "<uri>;expires=N", built in one allocation.
func contactValue(uri string, expires int) string {
	var buf [160]byte
	b := append(buf[:0], '<')
	b = append(b, uri...)
	b = append(b, ">;expires="...)
	b = strconv.AppendInt(b, int64(expires), 10)
	return string(b)
}

// serverHeader is the Server header of every response. A header object is
// only read once it is in a response (the transaction layer writes it,
// Clone copies it), so responses share this one.
var serverHeader = sip.NewHeader("Server", "voxgate")

// dateHeaders makes the Date header of the registrar's 200s (RFC 3261
// 10.3 step 8), one header object per second shared by the responses of
// that second (see serverHeader).
type dateHeaders struct {
	cur atomic.Pointer[dateHeader]
}

type dateHeader struct {
	sec int64
	h   sip.Header
}

// at returns the Date header for now.
func (d *dateHeaders) at(now time.Time) sip.Header {
	sec := now.Unix()
	if c := d.cur.Load(); c != nil && c.sec == sec {
		return c.h
	}
	c := &dateHeader{sec: sec, h: sip.NewHeader("Date", now.UTC().Format(time.RFC1123))}
	d.cur.Store(c)
	return c.h
}

// transportName is a request's transport as logs write it (udp, tcp, tls,
// ws, wss) without allocating for the usual ones.
func transportName(tp string) string {
	switch tp {
	case "UDP", "udp":
		return "udp"
	case "TCP", "tcp":
		return "tcp"
	case "TLS", "tls":
		return "tls"
	case "WS", "ws":
		return "ws"
	case "WSS", "wss":
		return "wss"
	}
	return strings.ToLower(tp)
}
