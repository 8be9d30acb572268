package guard

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

func testGuard() (*Guard, *time.Time) {
	now := time.Unix(1000, 0)
	g := New(Config{SlowAfter: 2, BanAfter: 4, Window: time.Minute, Delay: time.Second, BanFor: 10 * time.Minute},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.now = func() time.Time { return now }
	return g, &now
}

// An address is slowed, then banned (for every way in), and the ban ends.
func TestSlowThenBan(t *testing.T) {
	g, now := testGuard()
	for i, want := range []time.Duration{0, time.Second, time.Second, time.Second} {
		if d := g.Failed("192.0.2.1", "alice", "web"); d != want {
			t.Errorf("failure %d: wait %v, want %v", i+1, d, want)
		}
	}
	if !g.Banned("192.0.2.1") || g.Banned("192.0.2.2") {
		t.Fatal("the fourth failure does not ban that address (only)")
	}
	g.Succeeded("192.0.2.1", "alice") // a right password does not lift a ban
	if !g.Banned("192.0.2.1") {
		t.Fatal("a success lifted the ban")
	}
	*now = now.Add(11 * time.Minute)
	if g.Banned("192.0.2.1") {
		t.Fatal("the ban did not end")
	}
}

// A user guessed at from many addresses is slowed down, not banned.
func TestUserSprayedSlowed(t *testing.T) {
	g, _ := testGuard()
	var last time.Duration
	for i := 0; i < 5; i++ {
		last = g.Failed("198.51.100."+string(rune('1'+i)), "alice", "sip")
	}
	if last != time.Second {
		t.Fatalf("the fifth failure for alice from a fifth address waits %v, want 1s", last)
	}
	for i := 0; i < 5; i++ {
		if g.Banned("198.51.100." + string(rune('1'+i))) {
			t.Fatal("one failure banned an address")
		}
	}
	g.Succeeded("203.0.113.9", "alice")
	if d := g.Failed("198.51.100.9", "alice", "sip"); d != 0 {
		t.Fatalf("after alice signed in, a first failure waits %v", d)
	}
}

// Failures older than the window are forgotten.
func TestWindow(t *testing.T) {
	g, now := testGuard()
	g.Failed("192.0.2.1", "", "api")
	g.Failed("192.0.2.1", "", "api")
	*now = now.Add(2 * time.Minute)
	if d := g.Failed("192.0.2.1", "", "api"); d != 0 {
		t.Fatalf("a failure after the window waits %v", d)
	}
}
