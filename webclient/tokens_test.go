package webclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
)

// The plaintext tokens of scopedConfig's hashed ones.
const (
	adminTok   = "admin-token-0123456789"
	readTok    = "read-token-0123456789"
	metricsTok = "metrics-token-0123456789"
	bothTok    = "read-metrics-token-0123"
	legacyTok  = "legacy-plain-token"
)

func scopedConfig() Config {
	return Config{APIToken: legacyTok, Tokens: []Token{
		{Name: "ops", SHA256: HashToken(adminTok), Scopes: []string{"admin"}},
		{Name: "dashboard", SHA256: HashToken(readTok), Scopes: []string{"read"}},
		{Name: "grafana", SHA256: HashToken(metricsTok), Scopes: []string{"metrics"}},
		{Name: "both", SHA256: HashToken(bothTok), Scopes: []string{"read", "metrics"}},
	}}
}

// Every scope against every class of endpoint: admin does all, read GETs
// the API, metrics only /metrics; the legacy api_token is admin; public
// routes need nothing; no token is 401, a wrong scope 403 naming the scope.
func TestScopes(t *testing.T) {
	base := apiWebConfig(t, scopedConfig(), &fakeControl{})
	type endpoint struct {
		class, method, path, body string
		need                      Scope
		ok                        int
	}
	endpoints := []endpoint{
		{"read the API", "GET", "/api/v1/rooms", "", ScopeRead, 200},
		{"read one room", "GET", "/api/v1/rooms/8001", "", ScopeRead, 200},
		{"read an alias", "GET", "/api/trunks", "", ScopeRead, 200},
		{"change a room", "PATCH", "/api/v1/rooms/8001", `{"locked":true}`, ScopeAdmin, 200},
		{"dial into a room", "POST", "/api/v1/rooms/8001/dial", `{"user":"bob"}`, ScopeAdmin, 202},
		{"kick", "DELETE", "/api/v1/rooms/8001/legs/alice%2Fc1", "", ScopeAdmin, 200},
		{"metrics", "GET", "/metrics", "", ScopeMetrics, 200},
		{"public: the session", "GET", "/api/v1/session", "", ScopePublic, 401}, // not signed in, whatever the token
	}
	tokens := []struct {
		name, token string
		scopes      []Scope
	}{
		{"admin", adminTok, []Scope{ScopeAdmin}},
		{"legacy api_token", legacyTok, []Scope{ScopeAdmin}},
		{"read", readTok, []Scope{ScopeRead}},
		{"metrics", metricsTok, []Scope{ScopeMetrics}},
		{"read+metrics", bothTok, []Scope{ScopeRead, ScopeMetrics}},
		{"no token", "", nil},
	}
	for _, tk := range tokens {
		for _, ep := range endpoints {
			t.Run(tk.name+"/"+ep.class, func(t *testing.T) {
				want := ep.ok
				switch {
				case ep.need == ScopePublic:
				case tk.token == "":
					want = http.StatusUnauthorized
				case !(bearer{scopes: tk.scopes}).allows(ep.need):
					want = http.StatusForbidden
				}
				code, body := call(t, ep.method, base+ep.path, tk.token, ep.body)
				if code != want {
					t.Fatalf("%s %s with %s: %d %s, want %d", ep.method, ep.path, tk.name, code, body, want)
				}
				if code == http.StatusForbidden {
					var e APIError
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Scope != ep.need || e.Status != 403 ||
						!strings.Contains(e.Error, `scope "`+string(ep.need)+`"`) {
						t.Fatalf("403 body %s does not name the scope %q", body, ep.need)
					}
				}
			})
		}
	}
	// The table above must mean something: each scope is refused somewhere.
	if (bearer{scopes: []Scope{ScopeRead}}).allows(ScopeMetrics) || (bearer{scopes: []Scope{ScopeMetrics}}).allows(ScopeRead) ||
		(bearer{scopes: []Scope{ScopeRead}}).allows(ScopeAdmin) {
		t.Fatal("scopes leak into each other")
	}
}

// The scheme's case does not matter; a token that is not Bearer is none.
func TestBearerHeader(t *testing.T) {
	base := apiWebConfig(t, scopedConfig(), &fakeControl{})
	for _, c := range []struct {
		header string
		code   int
	}{
		{"Bearer " + readTok, 200},
		{"bearer " + readTok, 200},
		{"BEARER  " + readTok + " ", 200},
		{"Basic " + readTok, 401},
		{readTok, 401},
		{"Bearer", 401},
	} {
		req, _ := http.NewRequest("GET", base+"/api/v1/rooms", nil)
		req.Header.Set("Authorization", c.header)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("Authorization: %q: %d, want %d", c.header, res.StatusCode, c.code)
		}
	}
}

// Hashed tokens alone turn the API on; with no token at all it is off.
func TestAPIOffWithoutTokens(t *testing.T) {
	cfg := scopedConfig()
	cfg.APIToken = ""
	on := apiWebConfig(t, cfg, &fakeControl{})
	if code, body := call(t, "GET", on+"/api/v1/rooms", readTok, ""); code != 200 {
		t.Fatalf("hashed tokens only: %d %s", code, body)
	}
	if code, _ := call(t, "GET", on+"/api/v1/rooms", legacyTok, ""); code != 401 {
		t.Fatalf("the unset api_token still works: %d", code)
	}
	off := apiWebConfig(t, Config{}, &fakeControl{})
	if code, body := call(t, "GET", off+"/api/v1/rooms", readTok, ""); code != 403 || !strings.Contains(body, "voxgate token") {
		t.Fatalf("no tokens configured: %d %s", code, body)
	}
}

// An old path answers like its /api/v1 successor, marked deprecated with a
// link to the successor (path values filled in, escaped as sent).
func TestAliases(t *testing.T) {
	base := apiWebConfig(t, scopedConfig(), &fakeControl{})
	for _, c := range []struct{ method, old, successor, body string }{
		{"GET", "/api/rooms/8001", "/api/v1/rooms/8001", ""},
		{"GET", "/api/rooms", "/api/v1/rooms", ""},
		{"GET", "/api/calls", "/api/v1/calls/active", ""},
		{"PATCH", "/api/rooms/8001/legs/alice%2Fc1", "/api/v1/rooms/8001/legs/alice%2Fc1", `{"muted":true}`},
		{"DELETE", "/api/calls/x", "/api/v1/calls/x", ""},
	} {
		t.Run(c.old, func(t *testing.T) {
			oldRes, oldBody := do(t, c.method, base+c.old, adminTok, c.body)
			newRes, newBody := do(t, c.method, base+c.successor, adminTok, c.body)
			if oldRes.StatusCode != newRes.StatusCode || oldBody != newBody {
				t.Fatalf("%s: %d %s; %s: %d %s", c.old, oldRes.StatusCode, oldBody, c.successor, newRes.StatusCode, newBody)
			}
			if oldRes.Header.Get("Deprecation") != "true" || oldRes.Header.Get("Link") != "<"+c.successor+`>; rel="successor-version"` {
				t.Fatalf("%s: Deprecation %q, Link %q", c.old, oldRes.Header.Get("Deprecation"), oldRes.Header.Get("Link"))
			}
			if newRes.Header.Get("Deprecation") != "" || newRes.Header.Get("Link") != "" {
				t.Fatalf("%s is marked deprecated", c.successor)
			}
		})
	}
}

func do(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res, b.String()
}

// The mux's own 404 and 405 are JSON under /api/ (405 with its Allow);
// outside /api/ the page's file server answers as before.
func TestMuxErrorsAreJSON(t *testing.T) {
	base := apiWebConfig(t, scopedConfig(), &fakeControl{})
	for _, c := range []struct {
		method, path string
		code         int
		allow, has   string
	}{
		{"GET", "/api/v1/nothing", 404, "", "no such endpoint: GET /api/v1/nothing"},
		{"DELETE", "/api/nothing/here", 404, "", "no such endpoint"},
		{"POST", "/api/v1/rooms", 405, "GET, HEAD", "method POST not allowed on /api/v1/rooms; allowed: GET, HEAD"},
		{"PUT", "/api/rooms/8001", 405, "GET, HEAD, PATCH", "allowed: GET, HEAD, PATCH"}, // an alias
		{"POST", "/api/v1/calls/active", 405, "DELETE, GET, HEAD", ""},                   // DELETE of /api/v1/calls/{id}
		{"GET", "/metrics/x", 0, "", ""},
	} {
		res, body := do(t, c.method, base+c.path, adminTok, "")
		if c.code == 0 { // not the API: not JSON
			if res.StatusCode != 404 || strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: %d %q %s", c.method, c.path, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			continue
		}
		var e APIError
		if res.StatusCode != c.code || res.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &e) != nil || e.Status != c.code || !strings.Contains(e.Error, c.has) {
			t.Errorf("%s %s: %d %q %s, want JSON %d with %q", c.method, c.path, res.StatusCode, res.Header.Get("Content-Type"), body, c.code, c.has)
		}
		if c.code == 405 && res.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, res.Header.Get("Allow"), c.allow)
		}
	}
}

// A handler's panic is a JSON 500, logged.
func TestPanicIsJSON500(t *testing.T) {
	var logs syncBuffer
	base := apiWebConfig(t, scopedConfig(), panicControl{&fakeControl{}}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	code, body := call(t, "GET", base+"/api/v1/registrations", readTok, "")
	if code != 500 || !strings.Contains(body, `"status":500`) {
		t.Fatalf("a panicking handler: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "REST API handler panicked") {
		t.Fatalf("the panic is not logged:\n%s", logs.String())
	}
}

type panicControl struct{ *fakeControl }

func (panicControl) Registrations() []Registration { panic("boom") }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The audit log names the token that made a change, never the token.
func TestAuditLogsTokenName(t *testing.T) {
	var logs syncBuffer
	base := apiWebConfig(t, scopedConfig(), &fakeControl{}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if code, body := call(t, "PATCH", base+"/api/v1/rooms/8001", adminTok, `{"locked":true}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	call(t, "PATCH", base+"/api/v1/rooms/8001", "wrong-"+adminTok, `{"locked":true}`)
	out := logs.String()
	if !strings.Contains(out, "REST API: room changed") || !strings.Contains(out, "token=ops") {
		t.Fatalf("the audit line lacks the token's name:\n%s", out)
	}
	if strings.Contains(out, adminTok) || strings.Contains(out, HashToken(adminTok)) {
		t.Fatalf("the log holds the token:\n%s", out)
	}
}

// Wrong tokens are guesses the guard counts (a hashed token's too); a
// right token of the wrong scope is not.
func TestTokenGuessingBannedNotScope(t *testing.T) {
	g := testGuard()
	base := apiWebConfig(t, scopedConfig(), &fakeControl{}, WithGuard(g))
	for i := 0; i < 10; i++ {
		if code, _ := call(t, "PATCH", base+"/api/v1/rooms/8001", metricsTok, `{"locked":true}`); code != 403 {
			t.Fatalf("wrong scope: %d", code)
		}
	}
	if g.Banned("127.0.0.1") {
		t.Fatal("a right token of the wrong scope got the address banned")
	}
	for i := 0; i < 6; i++ {
		call(t, "GET", base+"/metrics", metricsTok+"x", "")
	}
	if code, body := call(t, "GET", base+"/metrics", metricsTok, ""); code != 403 || !strings.Contains(body, "too many failed") {
		t.Fatalf("the right token after guessing: %d %s, want 403", code, body)
	}
}

// web.tokens is checked: names unique, the hash 64 hex digits, the scopes
// known (the error lists them).
func TestTokenConfig(t *testing.T) {
	h := HashToken("x")
	for _, c := range []struct {
		name   string
		tokens []Token
		field  string
		has    string
	}{
		{"fine", []Token{{Name: "a", SHA256: h, Scopes: []string{"read", "metrics"}}, {Name: "b", SHA256: strings.ToUpper(h), Scopes: []string{"admin"}}}, "", ""},
		{"no name", []Token{{SHA256: h, Scopes: []string{"read"}}}, "tokens[0].name", "needs a name"},
		{"same name", []Token{{Name: "a", SHA256: h, Scopes: []string{"read"}}, {Name: "a", SHA256: h, Scopes: []string{"read"}}}, "tokens[1].name", `"a" names two tokens`},
		{"short hash", []Token{{Name: "a", SHA256: h[:60], Scopes: []string{"read"}}}, "tokens[0].sha256", "64 hex digits"},
		{"not hex", []Token{{Name: "a", SHA256: strings.Repeat("g", 64), Scopes: []string{"read"}}}, "tokens[0].sha256", "64 hex digits"},
		{"no scopes", []Token{{Name: "a", SHA256: h}}, "tokens[0].scopes", "admin, read, metrics"},
		{"unknown scope", []Token{{Name: "a", SHA256: h, Scopes: []string{"read", "write"}}}, "tokens[0].scopes[1]", `unknown scope "write": the scopes are admin, read, metrics`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Tokens: c.tokens}
			err := cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b, ok := cfg.lookupToken("x"); !ok || b.name != "a" {
					t.Fatalf("the token hashed to %s is not found: %+v", h, b)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Field != c.field || !strings.Contains(err.Error(), c.has) {
				t.Fatalf("error %v, want field %s with %q", err, c.field, c.has)
			}
		})
	}
}
