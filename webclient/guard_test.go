package webclient

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/voxgate/voxgate/internal/guard"
)

// guardedWeb is a web server sharing g, with the REST API on.
func guardedWeb(t *testing.T, g Guard) string {
	t.Helper()
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, UDPPorts: "41000-41999", APIToken: "the-token"},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}),
		WithHandler(echoHandler{}), WithControl(&fakeControl{}), WithGuard(g))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr().String()
}

func testGuard() *guard.Guard {
	return guard.New(guard.Config{SlowAfter: 3, BanAfter: 6, Delay: time.Millisecond, Window: time.Minute, BanFor: time.Minute},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Guessing passwords on the sign-in gets the address banned: after that
// even the right password is refused (403), and so is the WebSocket.
func TestSignInGuessingBanned(t *testing.T) {
	base := guardedWeb(t, testGuard())
	hc, _ := signIn(t, base, "alice", "pw") // signed in before the guessing
	codes := map[int]int{}
	for i := 0; i < 20; i++ {
		_, code := signIn(t, base, "alice", "guess")
		codes[code]++
	}
	if codes[401] != 5 || codes[403] != 15 {
		t.Fatalf("answers to 20 wrong passwords: %v, want 5 x 401 then 403", codes)
	}
	if _, code := signIn(t, base, "alice", "pw"); code != http.StatusForbidden {
		t.Fatalf("the right password from a banned address: %d, want 403", code)
	}
	if _, res, err := dialWS(t, base, hc, ""); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("the WebSocket from a banned address: %v %v", res, err)
	}
}

// A ban earned over SIP holds on the web side: the guard is one.
func TestSIPBanHoldsOnTheWeb(t *testing.T) {
	g := testGuard()
	base := guardedWeb(t, g)
	for i := 0; i < 6; i++ {
		g.Failed("127.0.0.1", "alice", "sip")
	}
	if _, code := signIn(t, base, "alice", "pw"); code != http.StatusForbidden {
		t.Fatalf("sign-in from an address banned over SIP: %d, want 403", code)
	}
	req, _ := http.NewRequest("GET", base+"/api/rooms", nil)
	req.Header.Set("Authorization", "Bearer the-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("the API from an address banned over SIP: %d, want 403", res.StatusCode)
	}
}

// Guessing the API token bans too; a request with no token is not a guess.
func TestAPITokenGuessingBanned(t *testing.T) {
	g := testGuard()
	base := guardedWeb(t, g)
	get := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/api/rooms", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := 0; i < 10; i++ {
		if code := get(""); code != http.StatusUnauthorized {
			t.Fatalf("no token: %d", code)
		}
	}
	if g.Banned("127.0.0.1") {
		t.Fatal("requests without a token got the address banned")
	}
	for i := 0; i < 6; i++ {
		get("guess")
	}
	if code := get("the-token"); code != http.StatusForbidden {
		t.Fatalf("the right token after guessing: %d, want 403", code)
	}
}
