package webclient

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/voxgate/voxgate/internal/config"
)

// Scope is what a token may do.
type Scope string

// The scopes of API tokens.
const (
	// ScopePublic marks a route that needs no token (the page's sign-in,
	// the API's description).
	ScopePublic Scope = ""
	// ScopeAdmin may do everything.
	ScopeAdmin Scope = "admin"
	// ScopeRead may GET the REST API.
	ScopeRead Scope = "read"
	// ScopeMetrics may GET /metrics, nothing else.
	ScopeMetrics Scope = "metrics"
)

// allScopes are the scopes a token may have.
var allScopes = []Scope{ScopeAdmin, ScopeRead, ScopeMetrics}

// ParseScope checks a scope's name.
func ParseScope(s string) (Scope, error) {
	if slices.Contains(allScopes, Scope(s)) {
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q: the scopes are %s", s, scopeNames(allScopes))
}

// Token is an API token in the config: its SHA-256, never the token.
type Token struct {
	// Name says whose token it is (logged with every change it makes).
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token (`voxgate token` prints it).
	SHA256 string `yaml:"sha256"`
	// Scopes are what it may do: admin, read, metrics.
	Scopes []string `yaml:"scopes"`

	hash   []byte
	scopes []Scope
}

// HashToken is the hex SHA-256 of a token, as web.tokens holds it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validateTokens checks web.tokens and decodes their hashes.
func (c *Config) validateTokens() error {
	names := map[string]bool{}
	for i := range c.Tokens {
		t := &c.Tokens[i]
		field := func(f string) string { return fmt.Sprintf("tokens[%d].%s", i, f) }
		if t.Name == "" {
			return config.Fieldf(field("name"), "a token needs a name (it is logged with what the token does)")
		}
		if names[t.Name] {
			return config.Fieldf(field("name"), "%q names two tokens", t.Name)
		}
		names[t.Name] = true
		h, err := hex.DecodeString(t.SHA256)
		if err != nil || len(h) != sha256.Size {
			return config.Fieldf(field("sha256"), "want the 64 hex digits of the token's SHA-256 (run `voxgate token`), not %d characters", len(t.SHA256))
		}
		t.hash = h
		if len(t.Scopes) == 0 {
			return config.Fieldf(field("scopes"), "give at least one of %s", scopeNames(allScopes))
		}
		t.scopes = t.scopes[:0]
		for j, s := range t.Scopes {
			sc, err := ParseScope(s)
			if err != nil {
				return config.FieldErr(fmt.Sprintf("tokens[%d].scopes[%d]", i, j), err)
			}
			t.scopes = append(t.scopes, sc)
		}
	}
	return nil
}

// apiOn reports whether any token is configured.
func (c *Config) apiOn() bool { return c.APIToken != "" || len(c.Tokens) > 0 }

// bearer is the token a request presents, its name and scopes.
type bearer struct {
	name   string
	scopes []Scope
}

// allows reports whether the token may use a route of scope need.
func (b bearer) allows(need Scope) bool {
	return slices.Contains(b.scopes, ScopeAdmin) || slices.Contains(b.scopes, need)
}

// lookupToken finds the configured token a presented one is. Every
// configured token is compared, in constant time, whatever matches.
func (c *Config) lookupToken(presented string) (bearer, bool) {
	var found bearer
	ok := false
	if c.APIToken != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(c.APIToken)) == 1 {
		found, ok = bearer{name: "api_token", scopes: []Scope{ScopeAdmin}}, true
	}
	sum := sha256.Sum256([]byte(presented))
	for _, t := range c.Tokens {
		if subtle.ConstantTimeCompare(sum[:], t.hash) == 1 && !ok {
			found, ok = bearer{name: t.Name, scopes: t.scopes}, true
		}
	}
	return found, ok
}

type tokenKey struct{}

// tokenName is the name of the token that authorized a request ("" if none).
func tokenName(ctx context.Context) string {
	name, _ := ctx.Value(tokenKey{}).(string)
	return name
}

// apiAllowed checks the bearer token against the scope a route needs; it
// answers the request when not. The request it returns carries the
// token's name for the audit log.
func (s *Server) apiAllowed(w http.ResponseWriter, r *http.Request, need Scope) (*http.Request, bool) {
	if s.control == nil || !s.cfg.apiOn() {
		writeError(w, http.StatusForbidden, "the REST API is off: add a token to web.tokens (run `voxgate token`) or set web.api_token")
		return r, false
	}
	if s.refuseBanned(w, r) {
		return r, false
	}
	auth := r.Header.Get("Authorization")
	presented, isBearer := bearerToken(auth)
	b, ok := s.cfg.lookupToken(presented)
	if !isBearer || presented == "" || !ok {
		s.log.Info("REST API request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "had_token", auth != "")
		if auth != "" { // a wrong token is a guess; no token at all is not
			s.failed(r, "", "api")
			if s.refuseBanned(w, r) {
				return r, false
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="voxgate"`)
		writeError(w, http.StatusUnauthorized, "send Authorization: Bearer <token> (a token of web.tokens, or web.api_token)")
		return r, false
	}
	if !b.allows(need) {
		s.log.Info("REST API request refused: scope", "remote", r.RemoteAddr, "path", r.URL.Path, "token", b.name, "needs", string(need))
		writeJSON(w, http.StatusForbidden, APIError{Status: http.StatusForbidden, Scope: need,
			Error: fmt.Sprintf("token %q lacks the scope %q that %s %s needs (it has %s)", b.name, need, r.Method, r.URL.Path, scopeNames(b.scopes))})
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), tokenKey{}, b.name)), true
}

// bearerToken is the token of an "Authorization: Bearer <token>" header (the
// scheme's case does not matter, RFC 9110 11.1).
func bearerToken(auth string) (string, bool) {
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(auth[7:]), true
}

func scopeNames(scopes []Scope) string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
