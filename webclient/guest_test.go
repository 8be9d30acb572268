package webclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"
)

func testSigner(key string, now time.Time) *guestSigner {
	return &guestSigner{key: []byte(strings.Repeat(key, 32)[:32]), now: func() time.Time { return now }}
}

// A link verifies while valid and names its room; expired, forged,
// tampered, unsigned ("none") or other-algorithm links are refused.
func TestGuestTokens(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	g := testSigner("k", now)
	tok, exp, err := g.issue("8001", "", time.Hour)
	if err != nil || !exp.Equal(now.Add(time.Hour)) {
		t.Fatal(exp, err)
	}
	c, err := g.verify(tok)
	if err != nil || c.Room != "8001" || c.Name != "" || c.ID == "" || !c.IssuedAt.Time.Equal(now) {
		t.Fatalf("a fresh link: %+v %v", c, err)
	}
	named, _, _ := g.issue("8001", "Bob", time.Hour)
	if c, err := g.verify(named); err != nil || c.Name != "Bob" {
		t.Fatalf("a named link: %+v %v", c, err)
	}
	other, _, _ := g.issue("8001", "", time.Hour)
	if o, _ := g.verify(other); o.ID == c.ID {
		t.Fatal("two links share a jti")
	}

	later := testSigner("k", now.Add(time.Hour+time.Second))
	if _, err := later.verify(tok); !errors.Is(err, ErrGuestExpired) {
		t.Fatalf("an expired link: %v", err)
	}
	if _, err := testSigner("x", now).verify(tok); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("another key's link: %v", err)
	}
	// The payload changed to another room, the signature kept.
	parts := strings.Split(tok, ".")
	claims := GuestClaims{Room: "9999", RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("elsewhere-elsewhere-elsewhere-32"))
	tampered := parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	if _, err := g.verify(tampered); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("a tampered link: %v", err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := g.verify(none); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("alg none: %v", err)
	}
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(g.key)
	if _, err := g.verify(hs512); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("HS512 with the right key: %v", err)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, GuestClaims{Room: "8001"}).SignedString(g.key)
	if _, err := g.verify(noExp); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("a link without exp: %v", err)
	}
	noRoom, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, GuestClaims{RegisteredClaims: claims.RegisteredClaims}).SignedString(g.key)
	if _, err := g.verify(noRoom); !errors.Is(err, ErrGuestInvalid) {
		t.Fatalf("a link without a room: %v", err)
	}
	for _, junk := range []string{"", "a.b.c", "not a jwt", tok + "x"} {
		if _, err := g.verify(junk); !errors.Is(err, ErrGuestInvalid) {
			t.Fatalf("%q: %v", junk, err)
		}
	}
}

// web.guest_key is base64 of at least 32 bytes.
func TestGuestKeyConfig(t *testing.T) {
	for _, c := range []struct {
		key string
		ok  bool
	}{
		{"", true},
		{"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=", true}, // 32 bytes
		{"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE", true},  // unpadded
		{"MDEyMzQ1Njc4OTAxMjM0NTY3ODkw", false},                // 20 bytes
		{"not base64!", false},
	} {
		cfg := Config{GuestKey: c.key}
		err := cfg.Validate()
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "guest_key")) {
			t.Errorf("guest_key %q: %v", c.key, err)
		}
	}
}

// guestHandler records the browser calls it is handed and ends them.
type guestHandler struct {
	mu    sync.Mutex
	calls []string // "id caller guestroom dialed"
}

func (h *guestHandler) HandleCall(_ context.Context, c *Call) {
	h.mu.Lock()
	h.calls = append(h.calls, strings.Join([]string{c.ID(), c.Caller(), c.GuestRoom(), c.Dialed()}, " "))
	h.mu.Unlock()
	c.Reject(486, "busy")
}

func (h *guestHandler) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

func newGuestWeb(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	cfg := scopedConfig()
	cfg.Listen, cfg.ICEIPs, cfg.UDPPorts = "127.0.0.1:0", []string{"127.0.0.1"}, "41000-41999"
	s, err := NewServer(cfg, WithAuthenticator(passwords{"alice": "pw"}), WithHandler(h), WithControl(&fakeControl{}),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, "http://" + s.Addr().String()
}

// guestLink makes a link through the API with the admin token.
func guestLink(t *testing.T, base, room, body string) GuestLink {
	t.Helper()
	code, out := call(t, "POST", base+"/api/v1/rooms/"+room+"/guest-links", adminTok, body)
	var l GuestLink
	if code != http.StatusCreated || json.Unmarshal([]byte(out), &l) != nil || l.Token == "" {
		t.Fatalf("guest link: %d %s", code, out)
	}
	return l
}

// The API makes guest links (admin only, ttl and name checked).
func TestGuestLinkAPI(t *testing.T) {
	_, base := newGuestWeb(t, &guestHandler{})
	before := time.Now()
	l := guestLink(t, base, "8001", `{"ttl_seconds":600}`)
	u, _ := url.Parse(l.URL)
	if u.Scheme != "http" || u.Host != strings.TrimPrefix(base, "http://") || u.Path != "/" || u.Query().Get("guest") != l.Token {
		t.Fatalf("url %s", l.URL)
	}
	if d := l.Expires.Sub(before); d < 599*time.Second || d > 601*time.Second {
		t.Fatalf("expires in %v, want 10 min", d)
	}
	if code, body := call(t, "POST", base+"/api/v1/rooms/8001/guest-links", readTok, `{}`); code != 403 || !strings.Contains(body, `"scope":"admin"`) {
		t.Fatalf("a read token: %d %s", code, body)
	}
	for _, body := range []string{`{"ttl_seconds":5}`, `{"ttl_seconds":99999999}`, `{"name":"` + strings.Repeat("x", 65) + `"}`, `{"name":"a\u0007b"}`, `{"room":"x"}`} {
		if code, out := call(t, "POST", base+"/api/v1/rooms/8001/guest-links", adminTok, body); code != 400 || !strings.Contains(out, `"status":400`) {
			t.Errorf("%s: %d %s, want 400", body, code, out)
		}
	}
	if code, out := call(t, "POST", base+"/api/v1/rooms/8001/guest-links", adminTok, ``); code != 400 {
		t.Errorf("no body: %d %s", code, out)
	}
}

// guestSignIn signs in with a guest link and returns the client, the
// status and the error answer.
func guestSignIn(t *testing.T, base, token, name string) (*http.Client, int, APIError) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	b, _ := json.Marshal(map[string]string{"guest": token, "name": name})
	res, err := hc.Post(base+"/api/v1/login", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e APIError
	_ = json.NewDecoder(res.Body).Decode(&e)
	return hc, res.StatusCode, e
}

// An offer as a browser makes it (no need to connect).
func offerSDP(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// A guest signs in with a link and a display name, and may join the link's
// room only: no dial, no other room, no answering; its call is handed over
// with its name and room and an id of its own. Expired, forged and unsigned
// links get clear errors.
func TestGuestSignInJoinsItsRoomOnly(t *testing.T) {
	h := &guestHandler{}
	s, base := newGuestWeb(t, h)
	l := guestLink(t, base, "8001", `{}`)

	if _, code, e := guestSignIn(t, base, l.Token, ""); code != 400 || !strings.Contains(e.Error, "display name") {
		t.Fatalf("no name: %d %+v", code, e)
	}
	hc, code, e := guestSignIn(t, base, l.Token, "  Bob Guest ")
	if code != 200 {
		t.Fatalf("guest sign-in: %d %+v", code, e)
	}
	res, err := hc.Get(base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	var sess sessionInfo
	_ = json.NewDecoder(res.Body).Decode(&sess)
	res.Body.Close()
	if sess.User != "Bob Guest" || !sess.Guest || sess.Room != "8001" {
		t.Fatalf("the guest's session: %+v", sess)
	}
	if s.Online("Bob Guest") {
		t.Fatal("a guest is online as a user")
	}

	ws, _, err := dialWS(t, base, hc, base)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() Message {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m Message
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); m.Type != "hello" || m.User != "Bob Guest" || m.Room != "8001" {
		t.Fatalf("hello: %+v", m)
	}
	sdp := offerSDP(t)
	for _, m := range []Message{
		{Type: "dial", ID: "c1", Number: "9196", SDP: sdp},
		{Type: "join", ID: "c2", Room: "8002", SDP: sdp},
		{Type: "answer", ID: "in1", SDP: sdp},
	} {
		_ = ws.WriteJSON(m)
		if r := read(); r.Type != "error" || r.ID != m.ID || !strings.Contains(r.Message, "guest") {
			t.Fatalf("%s by a guest: %+v", m.Type, r)
		}
	}
	_ = ws.WriteJSON(Message{Type: "join", ID: "c3", Room: "8001", SDP: sdp})
	deadline := time.Now().Add(5 * time.Second)
	for len(h.seen()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	seen := h.seen()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "guest-") || !strings.HasSuffix(seen[0], "/c3 Bob Guest 8001 8001") {
		t.Fatalf("calls handed over: %q", seen)
	}

	// A user's call is no guest's.
	alice := newClient(t, base)
	alice.expect("hello")
	alice.send(Message{Type: "dial", ID: "a1", Number: "9196", SDP: sdp})
	for len(h.seen()) < 2 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	if seen := h.seen(); len(seen) != 2 || seen[1] != "alice/a1 alice  9196" {
		t.Fatalf("alice's call: %q", seen)
	}

	// Links refused, each with its reason.
	old := &guestSigner{key: s.guests.key, now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	expired, _, _ := old.issue("8001", "", time.Hour)
	forged, _, _ := testSigner("f", time.Now()).issue("8001", "", time.Hour)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, GuestClaims{Room: "8001", RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, c := range []struct{ name, token, has string }{
		{"expired", expired, "has expired"},
		{"forged", forged, "not valid"},
		{"alg none", none, "not valid"},
	} {
		if _, code, e := guestSignIn(t, base, c.token, "Eve"); code != 401 || !strings.Contains(e.Error, c.has) {
			t.Errorf("%s link: %d %+v", c.name, code, e)
		}
	}
}

// A link that fixes the name signs in with that name whatever is typed;
// a guest session does not outlive its link.
func TestGuestLinkFixesName(t *testing.T) {
	s, base := newGuestWeb(t, &guestHandler{})
	l := guestLink(t, base, "room-a", `{"name":"Dr. Who","ttl_seconds":60}`)
	hc, code, e := guestSignIn(t, base, l.Token, "Someone Else")
	if code != 200 {
		t.Fatalf("%d %+v", code, e)
	}
	u, _ := url.Parse(base)
	var cookie string
	for _, c := range hc.Jar.Cookies(u) {
		cookie = c.Value
	}
	id, err := s.sessions.check(cookie)
	if err != nil || id.user != "Dr. Who" || id.room != "room-a" {
		t.Fatalf("session %+v %v", id, err)
	}
	later := &sessions{key: s.sessions.key, ttl: time.Hour, now: func() time.Time { return time.Now().Add(61 * time.Second) }}
	if _, err := later.check(cookie); err == nil {
		t.Fatal("the guest session outlived its link")
	}
}

// Any sign-in body (a guest's, with any token) gets a JSON answer of 200,
// 400 or 401; only a link this server signed signs a guest in.
func FuzzGuestLogin(f *testing.F) {
	s, err := NewServer(Config{}, WithAuthenticator(passwords{"alice": "pw"}), WithGuard(noGuard{}),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		f.Fatal(err)
	}
	good, _, _ := s.guests.issue("8001", "", time.Hour)
	named, _, _ := s.guests.issue("8001", "Bob", time.Hour)
	f.Add(`{"guest":"` + good + `","name":"Bob"}`)
	f.Add(`{"guest":"` + named + `"}`)
	f.Add(`{"guest":"` + good[:len(good)-2] + `","name":"Bob"}`)
	f.Add(`{"guest":"eyJhbGciOiJub25lIn0.eyJyb29tIjoiODAwMSJ9.","name":"x"}`)
	f.Add(`{"guest":1}`)
	f.Add(`{"user":"alice","password":"pw"}`)
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		s.handleLogin(w, httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(body)))
		var out struct {
			APIError
			sessionInfo
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q: not JSON: %s", body, w.Body.String())
		}
		switch w.Code {
		case 200:
			if out.Guest {
				var in struct{ Guest string }
				_ = json.Unmarshal([]byte(body), &in)
				if c, err := s.guests.verify(in.Guest); err != nil || out.Room != c.Room || checkDisplayName(out.User) != nil {
					t.Fatalf("%q signed a guest in: %s (%v)", body, w.Body.String(), err)
				}
			}
		case 400, 401:
			if out.Status != w.Code || out.Error == "" {
				t.Fatalf("%q: %d %s", body, w.Code, w.Body.String())
			}
		default:
			t.Fatalf("%q: %d %s", body, w.Code, w.Body.String())
		}
	})
}

// A key given with WithGuestKey signs links that a second server with the
// same key (a restart) accepts; web.guest_key wins over it; a short one is refused.
func TestGuestKeyOption(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	mk := func(cfg Config, opts ...Option) *Server {
		s, err := NewServer(cfg, append([]Option{WithAuthenticator(passwords{}), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk(Config{}, WithGuestKey(key)), mk(Config{}, WithGuestKey(key))
	tok, _, _ := a.guests.issue("1", "", time.Hour)
	if _, err := b.guests.verify(tok); err != nil {
		t.Fatalf("the same key after a restart: %v", err)
	}
	if _, err := mk(Config{}).guests.verify(tok); err == nil {
		t.Fatal("a server with a random key took the link")
	}
	cfgKey := Config{GuestKey: "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}
	if _, err := mk(cfgKey, WithGuestKey(key)).guests.verify(tok); err == nil {
		t.Fatal("WithGuestKey won over web.guest_key")
	}
	if _, err := NewServer(Config{}, WithAuthenticator(passwords{}), WithGuestKey([]byte("short"))); err == nil {
		t.Fatal("a 5-byte key was taken")
	}
}
