package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"
)

// startRedis runs redis-server on a free loopback port for one test.
func startRedis(t *testing.T) *Redis {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server; run without -short (make test)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (Debian redis-server; .ci/deps test)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r, err := OpenRedis(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for deadline := time.Now().Add(10 * time.Second); r.Ping(context.Background()) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("redis-server does not answer")
		}
	}
	return r
}

func TestRedisBindings(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	now := time.Now()
	b := func(contact string, exp time.Duration) Binding {
		return Binding{AOR: "alice", Contact: contact, Source: "127.0.0.1:5062", Transport: "UDP", CallID: "c1", CSeq: 7, Expires: now.Add(exp)}
	}
	contacts := func() []string {
		bs, err := r.Bindings(ctx, "alice", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			out = append(out, b.Contact)
		}
		slices.Sort(out)
		return out
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.SaveBinding(ctx, b("sip:a@1", time.Hour)))
	must(r.SaveBinding(ctx, b("sip:a@2", 300*time.Millisecond)))
	if got := contacts(); !slices.Equal(got, []string{"sip:a@1", "sip:a@2"}) {
		t.Fatalf("bindings %v", got)
	}
	// The key lives as long as its longest binding; an expired binding is
	// not returned.
	ttl, err := r.c.PTTL(ctx, "loc:alice").Result()
	must(err)
	if ttl < 50*time.Minute {
		t.Fatalf("the key expires in %v, before its longest binding", ttl)
	}
	for deadline := time.Now().Add(5 * time.Second); len(contacts()) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the expired binding is still returned: %v", contacts())
		}
	}
	must(r.DeleteBinding(ctx, "alice", "sip:a@1"))
	if got := contacts(); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
	must(r.SaveBinding(ctx, b("sip:a@3", time.Hour)))
	must(r.DeleteBinding(ctx, "alice", ""))
	if got := contacts(); len(got) != 0 {
		t.Fatalf("after delete all: %v", got)
	}
	if err := r.SaveBinding(ctx, Binding{AOR: "alice"}); err == nil {
		t.Fatal("a binding without a contact was saved")
	}
}

func TestRedisRooms(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const a, b = "sip:10.0.0.1:5060", "sip:10.0.0.2:5060"
	if host, err := r.ClaimRoom(ctx, "800", a, 300*time.Millisecond); err != nil || host != a {
		t.Fatalf("claim: %q %v", host, err)
	}
	if host, err := r.ClaimRoom(ctx, "800", b, time.Second); !errors.Is(err, ErrRoomElsewhere) || host != a {
		t.Fatalf("a second node's claim: %q %v", host, err)
	}
	// Renewal keeps the room past its first expiry.
	for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := r.ClaimRoom(ctx, "800", a, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if host, _ := r.RoomHost(ctx, "800"); host != a {
		t.Fatalf("renewed room host %q", host)
	}
	// Another node's release leaves the claim; the holder's removes it.
	if err := r.ReleaseRoom(ctx, "800", b); err != nil {
		t.Fatal(err)
	}
	if host, _ := r.RoomHost(ctx, "800"); host != a {
		t.Fatalf("another node released the room: %q", host)
	}
	if err := r.ReleaseRoom(ctx, "800", a); err != nil {
		t.Fatal(err)
	}
	if host, _ := r.RoomHost(ctx, "800"); host != "" {
		t.Fatalf("released room still hosted by %q", host)
	}
	// A claim that is not renewed expires, and another node takes the room.
	if _, err := r.ClaimRoom(ctx, "801", a, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if host, err := r.ClaimRoom(ctx, "801", b, time.Second); err == nil && host == b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired claim was not taken over")
		}
	}
	// Liveness.
	if err := r.Heartbeat(ctx, "n1", a, time.Second); err != nil {
		t.Fatal(err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil || nodes["n1"] != a {
		t.Fatalf("nodes %v %v", nodes, err)
	}
	if err := r.Leave(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := r.Nodes(ctx); len(nodes) != 0 {
		t.Fatalf("nodes after leave: %v", nodes)
	}
}

func TestRedisURL(t *testing.T) {
	for _, u := range []string{"", "http://x", "redis://host:port/x"} {
		if _, err := OpenRedis(u); err == nil {
			t.Errorf("OpenRedis(%q) took a bad URL", u)
		}
	}
	r, err := OpenRedis("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(context.Background()); err == nil {
		t.Fatal("Ping answered with nothing listening")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
