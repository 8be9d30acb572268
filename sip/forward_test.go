package sip

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A call forwarded by another node (DialNodeUser) reaches the node holding
// the user's WebSocket as origin "forward" naming the user, but only from
// an address it trusts; from any other the header is ignored and the call
// is classified as any other (a guest).
func TestForwardTrustedFromNodesOnly(t *testing.T) {
	var trust atomic.Bool
	echo := &echoHandler{}
	holder, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "33300-33399", Codecs: []string{"pcmu", "pcma"}},
		WithLogger(quietLogger()), WithHandler(echo), WithCascadeFrom(func(string) bool { return trust.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	node, _ := testServer(t, nil)
	addr := "sip:" + holder.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, tc := range []struct {
		trusted    bool
		kind, name string
	}{
		{true, "forward", "alice"},
		{false, "guest", "carol"},
	} {
		trust.Store(tc.trusted)
		c, err := node.DialNodeUser(ctx, addr, "alice", "carol")
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		calls, _ := echo.snapshot()
		got := calls[len(calls)-1]
		if o := got.Origin(); o.Kind != tc.kind || o.Name != tc.name || got.Dialed() != "alice" {
			t.Errorf("case %d: the node saw origin %+v dialling %q, want %s %q dialling alice", i, o, got.Dialed(), tc.kind, tc.name)
		}
		c.Hangup(ctx)
	}
	if _, err := node.DialNodeUser(ctx, addr, "al ice", "carol"); err == nil {
		t.Error("a user name with a space was forwarded")
	}
}

func FuzzForwardUser(f *testing.F) {
	for _, s := range []string{"alice", " bob ", "", "a;b", "a b", "\x00", strings.Repeat("u", 129), "Café", "x.y_z~-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		user, err := parseForward(v)
		if err != nil {
			return
		}
		if user == "" || len(user) > 128 || !plainUser.MatchString(user) || user != strings.TrimSpace(v) {
			t.Fatalf("%q accepted as user %q", v, user)
		}
	})
}

// A cascade leg's view token goes with its flags; one that cannot be a
// token is ignored.
func TestCascadeViewToken(t *testing.T) {
	for _, tc := range []struct{ in, view string }{
		{"8400;moderator;view=view_0a1b", "view_0a1b"},
		{"8400;view=bad token", ""},
		{"8400;view=" + strings.Repeat("v", 65), ""},
		{"8400;view=", ""},
	} {
		cs, err := parseCascade(tc.in)
		if err != nil || cs.View != tc.view || cs.Room != "8400" {
			t.Errorf("%q: %+v %v, want view %q", tc.in, cs, err, tc.view)
		}
	}
	if h := (Cascade{Room: "8400", Moderator: true, View: "view_1"}).header(); h != "8400;moderator;view=view_1" {
		t.Errorf("header %q", h)
	}
}
