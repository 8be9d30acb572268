package webclient

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/voxgate/voxgate/internal/guard"
)

// guardedWeb is a web server sharing g, with the REST API on.
func guardedWeb(t *testing.T, g Guard) string {
	return apiWeb(t, "the-token", &fakeControl{}, WithHandler(echoHandler{}), WithGuard(g))
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
	if code, _ := call(t, "GET", base+"/api/rooms", "the-token", ""); code != http.StatusForbidden {
		t.Fatalf("the API from an address banned over SIP: %d, want 403", code)
	}
}

// Guessing the API token bans too; a request with no token is not a guess.
func TestAPITokenGuessingBanned(t *testing.T) {
	g := testGuard()
	base := guardedWeb(t, g)
	get := func(token string) int {
		code, _ := call(t, "GET", base+"/api/rooms", token, "")
		return code
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
