// Package logging holds what voxgate's logs share: the rule that writes
// durations and addresses the same way everywhere (ReplaceAttr), and pion's
// logs routed through slog (Pion).
//
// The rule, for every log line:
//   - a time.Duration is written in milliseconds, as a number, under its key
//     with "_ms" added ("timeout": 30s becomes "timeout_ms": 30000); only in
//     JSON, where a reader wants numbers (text keeps "30s");
//   - a net.Addr is written "transport:ip:port" ("udp:192.0.2.1:5060"), a
//     netip.AddrPort "ip:port" (it has no transport), never as a Go struct.
//
// What is never logged (secrets and what callers key): DTMF digits, PINs,
// passwords, tokens, SRTP keys. Code logs a count instead ("digits", 4).
package logging

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ReplaceAttr returns the slog.HandlerOptions.ReplaceAttr of voxgate's
// handlers; json says the handler writes JSON (durations in milliseconds).
func ReplaceAttr(json bool) func(groups []string, a slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindDuration:
			if !json {
				return a
			}
			key := a.Key
			if !strings.HasSuffix(key, "_ms") {
				key += "_ms"
			}
			return slog.Float64(key, Millis(a.Value.Duration()))
		case slog.KindAny:
			if s, ok := Addr(a.Value.Any()); ok {
				return slog.String(a.Key, s)
			}
			if addrs, ok := a.Value.Any().([]net.Addr); ok {
				out := make([]string, len(addrs))
				for i, ad := range addrs {
					out[i], _ = Addr(ad)
				}
				return slog.Any(a.Key, out)
			}
		}
		return a
	}
}

// Millis is d in milliseconds, with microseconds kept (1.5 for 1500µs).
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Addr writes an address the way logs show it: a net.Addr
// "transport:ip:port", a netip.AddrPort "ip:port", a netip.Addr its IP. ok
// is false for any other value (and for a nil net.Addr pointer, written "").
func Addr(v any) (s string, ok bool) {
	switch a := v.(type) {
	case netip.AddrPort:
		return a.String(), true
	case *netip.AddrPort:
		if a == nil {
			return "", true
		}
		return a.String(), true
	case netip.Addr:
		return a.String(), true
	case net.Addr:
		if isNil(a) {
			return "", true
		}
		return a.Network() + ":" + a.String(), true
	}
	return "", false
}

// isNil reports a net.Addr interface holding a nil pointer of a known type
// (calling its methods would panic).
func isNil(a net.Addr) bool {
	switch p := a.(type) {
	case *net.UDPAddr:
		return p == nil
	case *net.TCPAddr:
		return p == nil
	case *net.IPAddr:
		return p == nil
	case *net.UnixAddr:
		return p == nil
	}
	return false
}
