package webclient

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// WithPresence is told when a user's first page opens and when the last
// one closes, not for the pages in between.
func TestPresence(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, LoopbackICE: true, UDPPorts: "41000-41999"},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithHandler(echoHandler{}),
		WithPresence(func(user string, online bool) {
			mu.Lock()
			defer mu.Unlock()
			if online {
				got = append(got, user+" online")
			} else {
				got = append(got, user+" offline")
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.Addr().String()
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	wait := func(want ...string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !slices.Equal(seen(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("presence %v, want %v", seen(), want)
			}
		}
	}
	first := newClient(t, base)
	first.expect("hello")
	wait("alice online")
	second := newClient(t, base)
	second.expect("hello")
	if u := s.OnlineUsers(); !slices.Equal(u, []string{"alice"}) {
		t.Fatalf("online users %v", u)
	}
	first.ws.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		n := len(s.online["alice"])
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice has %d pages after the first closed", n)
		}
	}
	if g := seen(); !slices.Equal(g, []string{"alice online"}) {
		t.Fatalf("presence %v after one of two pages closed", g)
	}
	second.ws.Close()
	wait("alice online", "alice offline")
	if u := s.OnlineUsers(); len(u) != 0 {
		t.Fatalf("online users %v after the last page closed", u)
	}
}
