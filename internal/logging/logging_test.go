package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReplaceAttrJSON(t *testing.T) {
	var nilUDP *net.UDPAddr
	cases := []struct {
		name string
		attr slog.Attr
		key  string
		want any // as encoding/json decodes it
	}{
		{"duration", slog.Duration("timeout", 30*time.Second), "timeout_ms", 30000.0},
		{"sub-millisecond", slog.Duration("tick", 1500*time.Microsecond), "tick_ms", 1.5},
		{"already in ms", slog.Duration("delay_ms", 2*time.Millisecond), "delay_ms", 2.0},
		{"a duration as any", slog.Any("wait", time.Minute), "wait_ms", 60000.0},
		{"udp addr", slog.Any("remote", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}), "remote", "udp:192.0.2.1:5060"},
		{"tcp addr v6", slog.Any("remote", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5061}), "remote", "tcp:[2001:db8::1]:5061"},
		{"a nil addr", slog.Any("remote", nilUDP), "remote", ""},
		{"addrport", slog.Any("media", netip.MustParseAddrPort("198.51.100.7:20000")), "media", "198.51.100.7:20000"},
		{"addr", slog.Any("ip", netip.MustParseAddr("198.51.100.7")), "ip", "198.51.100.7"},
		{"other values stay", slog.Int("n", 3), "n", 3.0},
		{"a list of addrs", slog.Any("addrs", []net.Addr{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}}), "addrs", []any{"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"}},
		{"strings stay", slog.String("remote", "x"), "remote", "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr(true)}))
			log.Info("m", c.attr)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if v, ok := got[c.key]; !ok || !reflect.DeepEqual(v, c.want) {
				t.Fatalf("got %s, want %q: %v", buf.String(), c.key, c.want)
			}
		})
	}
}

// In a group too, and the text format keeps durations readable.
func TestReplaceAttrGroupsAndText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr(true)}))
	log.WithGroup("stats").Info("m", "jitter", 3*time.Millisecond, "peer", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000})
	if !strings.Contains(buf.String(), `"stats":{"jitter_ms":3,"peer":"udp:10.0.0.1:4000"}`) {
		t.Fatalf("got %s", buf.String())
	}
	buf.Reset()
	log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr(false)}))
	log.Info("m", "timeout", 30*time.Second, "peer", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000})
	if !strings.Contains(buf.String(), "timeout=30s peer=udp:10.0.0.1:4000") {
		t.Fatalf("got %s", buf.String())
	}
}

func TestPionLevels(t *testing.T) {
	cases := []struct {
		level slog.Level // the handler's
		want  []string   // the pion lines that get through
	}{
		{slog.LevelDebug, []string{"info 1", "warn 2", "error 3"}},
		{slog.LevelInfo, []string{"warn 2", "error 3"}},
		{slog.LevelWarn, []string{"error 3"}},
		{slog.LevelError, nil},
		{PionTrace, []string{"trace 1", "debug 1", "info 1", "warn 2", "error 3"}},
	}
	for _, c := range cases {
		t.Run(c.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: c.level}))
			l := Pion(log).NewLogger("ice")
			l.Trace("trace 1")
			l.Debugf("debug %d", 1)
			l.Infof("info %d", 1)
			l.Warn("warn 2")
			l.Errorf("error %d", 3)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(c.want) {
				t.Fatalf("got %q, want %q", lines, c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(lines[i], `msg="`+w+`"`) || !strings.Contains(lines[i], "component=pion scope=ice") {
					t.Fatalf("line %d: got %s, want %q from pion's ice", i, lines[i], w)
				}
			}
		})
	}
}

// A message with a % but no arguments reaches the log as pion meant it.
func TestPionPlainMessage(t *testing.T) {
	var buf bytes.Buffer
	Pion(slog.New(slog.NewTextHandler(&buf, nil))).NewLogger("dtls").Warn("100% lost")
	if !strings.Contains(buf.String(), `msg="100% lost"`) {
		t.Fatalf("got %s", buf.String())
	}
}
