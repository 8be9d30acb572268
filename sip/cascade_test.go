package sip

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// A cascade leg (DialNode) reaches the host as origin "cascade" naming the
// room, but only from an address the host trusts; from any other the
// header is ignored and the call is classified as any other (a guest).
func TestCascadeLegTrustedFromNodesOnly(t *testing.T) {
	var trust atomic.Bool
	var asked atomic.Value
	echo := &echoHandler{}
	host, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "33200-33299", Codecs: []string{"pcmu", "pcma"}},
		WithLogger(quietLogger()), WithHandler(echo), WithCascadeFrom(func(ip string) bool { asked.Store(ip); return trust.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	node, _ := testServer(t, nil)
	addr := "sip:" + host.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, tc := range []struct {
		trusted      bool
		room         string
		kind, name   string
		dialed, from string
	}{
		{true, "8300", "cascade", "8300", "8300", "carol"},
		{true, "Team Room", "cascade", "Team Room", "room", "carol"}, // not a plain URI user: named by the header only
		{false, "8300", "guest", "carol", "8300", "carol"},
	} {
		trust.Store(tc.trusted)
		c, err := node.DialNode(ctx, addr, Cascade{Room: tc.room}, tc.from)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		calls, _ := echo.snapshot()
		got := calls[len(calls)-1]
		if o := got.Origin(); o.Kind != tc.kind || o.Name != tc.name || got.Dialed() != tc.dialed {
			t.Errorf("case %d: the host saw origin %+v dialling %q, want %s %q dialling %q", i, o, got.Dialed(), tc.kind, tc.name, tc.dialed)
		}
		if ip, _ := asked.Load().(string); ip != "127.0.0.1" {
			t.Errorf("case %d: trust asked of %q", i, ip)
		}
		c.Hangup(ctx)
	}
	trust.Store(true)
	// The flags of the participant's admission reach the host.
	want := Cascade{Room: "8300", Moderator: true, WaitForModerator: true}
	c, err := node.DialNode(ctx, addr, want, "carol")
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := echo.snapshot()
	if got := calls[len(calls)-1].Cascade(); got != want {
		t.Errorf("the host read %+v, want %+v", got, want)
	}
	c.Hangup(ctx)
	// A node that sends a room name no room can have gets a 400.
	raw := newRawClient(t, host.Addrs()[0].String())
	raw.send(request("INVITE", "sip:room@"+host.Addrs()[0].String(), "bad-room", 1, CascadeHeader+": ../../etc;moderator\n", ""))
	if res := raw.final(5 * time.Second); res.StatusCode != 400 {
		t.Errorf("a cascade leg for room ../../etc got %d %s, want 400", res.StatusCode, res.Reason)
	}
	if _, err := node.DialNode(ctx, addr, Cascade{Room: "a/b"}, "carol"); err == nil {
		t.Error("a room name no room can have was dialled")
	}
	if _, err := node.DialNode(ctx, "sip:", Cascade{Room: "8300"}, "carol"); err == nil {
		t.Error("a node address without a host was dialled")
	}
}

// The room name of a cascade header is checked before it names a room (a
// recording's file name among others): never a path, never control
// characters, never empty or long.
func FuzzCascadeRoom(f *testing.F) {
	for _, s := range []string{"8300", " Team Room ", "", "..", "../x", "a\\b", "\x00", strings.Repeat("r", 129), "Café", "8300;moderator;wait", "8300 ; end ;x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cs, err := parseCascade(v)
		if err != nil {
			return
		}
		room := cs.Room
		if room == "" || len(room) > 128 || strings.ContainsAny(room, "/\\;") || room == ".." || room == "." || !utf8.ValidString(room) {
			t.Fatalf("%q accepted as room %q", v, room)
		}
		for _, r := range room {
			if unicode.IsControl(r) {
				t.Fatalf("%q accepted with a control character", v)
			}
		}
		again, err := parseCascade(cs.header()) // what DialNode sends reads back the same
		if err != nil || again != cs {
			t.Fatalf("%q: %+v sent as %q reads back %+v %v", v, cs, cs.header(), again, err)
		}
	})
}
