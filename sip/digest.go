package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of digest authentication.
var (
	ErrNoCredentials  = errors.New("no credentials")
	ErrBadCredentials = errors.New("malformed credentials")
	ErrStaleNonce     = errors.New("stale nonce")
	ErrBadNonce       = errors.New("nonce not issued by us")
	ErrWrongPassword  = errors.New("wrong password or username")
	ErrUnknownUser    = errors.New("unknown user")
	ErrRealm          = errors.New("wrong realm")
	ErrAlgorithm      = errors.New("unsupported algorithm")
)

// Credentials are the parameters of a Digest Authorization header (RFC 7616 / 8760).
type Credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string
	QOP       string
	NC        string
	CNonce    string
	Opaque    string
}

// ParseCredentials parses the value of an Authorization or
// Proxy-Authorization header carrying Digest credentials.
func ParseCredentials(v string) (Credentials, error) {
	var c Credentials
	v = strings.TrimSpace(v)
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return c, ErrBadCredentials
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return c, err
	}
	for k, val := range params {
		switch k {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		case "cnonce":
			c.CNonce = val
		case "opaque":
			c.Opaque = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return c, ErrBadCredentials
	}
	if c.Algorithm == "" {
		c.Algorithm = "MD5"
	}
	return c, nil
}

// parseAuthParams parses a comma-separated list of name=value or
// name="quoted value" pairs (RFC 7235 auth-param).
func parseAuthParams(s string) (map[string]string, error) {
	out := make(map[string]string, 10)
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' {
			i++
		}
		name := strings.ToLower(s[start:i])
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] != '=' || name == "" {
			return nil, ErrBadCredentials
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return nil, ErrBadCredentials
			}
			val = b.String()
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' {
				i++
			}
			val = s[start:i]
		}
		out[name] = val
	}
	return out, nil
}

// nonces issues self-validating nonces: a timestamp and an HMAC of it, so no
// state is kept per challenge and an expired nonce is told apart from a forged one.
type nonces struct {
	key    []byte
	ttl    time.Duration
	skew   atomic.Int64  // added to the clock; tests age nonces with it
	serial atomic.Uint32 // makes nonces of the same instant differ

	// The highest nonce count accepted per nonce (qop=auth): a replayed
	// request (the same or a lower nc) is refused as stale. Two generations,
	// swapped every ttl, keep every unexpired nonce's record at O(1) cost.
	mu        sync.Mutex
	used, old map[string]uint64
	rotated   time.Time
}

// use records nc for nonce and reports ErrStaleNonce for a replay.
func (n *nonces) use(nonce, nc string) error {
	count, err := strconv.ParseUint(nc, 16, 32)
	if err != nil || count == 0 {
		return ErrBadNonce
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.used == nil || now.Sub(n.rotated) > n.ttl {
		n.old, n.used, n.rotated = n.used, map[string]uint64{}, now
	}
	last, ok := n.used[nonce]
	if !ok {
		last = n.old[nonce]
	}
	if count <= last {
		return ErrStaleNonce
	}
	n.used[nonce] = count
	return nil
}

func newNonces(ttl time.Duration) *nonces {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &nonces{key: k, ttl: ttl}
}

func (n *nonces) now() time.Time { return time.Now().Add(time.Duration(n.skew.Load())) }

func (n *nonces) mac(ts []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(ts)
	return m.Sum(nil)[:12]
}

// issue makes a nonce: the time and a serial number (two challenges in the
// same clock tick must not share a nonce, or the second one's nc=1 would
// look like a replay), then an HMAC of both.
func (n *nonces) issue() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	binary.BigEndian.PutUint32(b[8:12], n.serial.Add(1))
	copy(b[12:], n.mac(b[:12]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *nonces) check(nonce string) error {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return ErrBadNonce
	}
	if !hmac.Equal(b[12:], n.mac(b[:12])) {
		return ErrBadNonce
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	if n.now().Sub(issued) > n.ttl {
		return ErrStaleNonce
	}
	return nil
}

// digestAuth verifies Digest credentials against local users.
type digestAuth struct {
	realm  string
	nonces *nonces
	algos  []string // in the order the challenges are sent
}

// challenges returns the WWW-Authenticate values to send, one per configured
// algorithm in order (RFC 8760 section 2.4), each with qop=auth.
//
// reuse, when it is a valid nonce of ours, is sent again instead of a fresh
// one: after wrong credentials, a phone that sees the nonce it already used
// gives up and reports 401, where a fresh nonce makes it retry the same
// password forever (baresip/libre does).
func (d *digestAuth) challenges(stale bool, reuse string) []string {
	nonce := reuse
	if nonce == "" || d.nonces.check(nonce) != nil {
		nonce = d.nonces.issue()
	}
	var out []string
	for _, algo := range d.algos {
		v := `Digest realm="` + d.realm + `", nonce="` + nonce + `", algorithm=` + algo + `, qop="auth"`
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

// verify checks credentials c sent with method against user u's secret.
func (d *digestAuth) verify(c Credentials, method string, u User) error {
	if c.Realm != d.realm {
		return ErrRealm
	}
	algo := strings.ToUpper(c.Algorithm)
	if algo != "MD5" && algo != "SHA-256" {
		return ErrAlgorithm
	}
	ha1, ok := u.ha1(algo, d.realm)
	if !ok {
		return ErrAlgorithm
	}
	if err := d.nonces.check(c.Nonce); err != nil {
		// Check the password first: a stale nonce with a wrong password is a
		// wrong password, and must not teach the client to simply retry.
		if errors.Is(err, ErrStaleNonce) && subtle.ConstantTimeCompare([]byte(expectedResponse(algo, ha1, method, c)), []byte(strings.ToLower(c.Response))) == 1 {
			return ErrStaleNonce
		}
		if errors.Is(err, ErrStaleNonce) {
			return ErrWrongPassword
		}
		return err
	}
	if subtle.ConstantTimeCompare([]byte(expectedResponse(algo, ha1, method, c)), []byte(strings.ToLower(c.Response))) != 1 {
		return ErrWrongPassword
	}
	if c.QOP != "" { // RFC 7616 3.4: the nonce count must grow; a replay is refused
		return d.nonces.use(c.Nonce, c.NC)
	}
	return nil
}

func expectedResponse(algo, ha1, method string, c Credentials) string {
	ha2 := hashHex(algo, method+":"+c.URI)
	if c.QOP == "auth" {
		return hashHex(algo, ha1+":"+c.Nonce+":"+c.NC+":"+c.CNonce+":auth:"+ha2)
	}
	return hashHex(algo, ha1+":"+c.Nonce+":"+ha2)
}
