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
	err := parseCredentials(v, &c)
	return c, err
}

// parseCredentials fills c from an Authorization value: a comma-separated
// list of name=value or name="quoted value" pairs (RFC 7235 auth-param)
// after the scheme. The values are parts of v (a quoted value is copied
// only when it holds an escape); a parameter given twice counts once, the
// last.
func parseCredentials(v string, c *Credentials) error {
	v = strings.TrimSpace(v)
	scheme, s, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return ErrBadCredentials
	}
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
		name := s[start:i]
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] != '=' || name == "" {
			*c = Credentials{}
			return ErrBadCredentials
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			var closed bool
			val, i, closed = quotedValue(s, i+1)
			if !closed {
				*c = Credentials{}
				return ErrBadCredentials
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' {
				i++
			}
			val = s[start:i]
		}
		if f := c.field(name); f != nil {
			*f = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return ErrBadCredentials
	}
	if c.Algorithm == "" {
		c.Algorithm = "MD5"
	}
	return nil
}

// quotedValue reads a quoted string's content from s[i:] (just after the
// opening quote) up to its closing quote, undoing backslash escapes. It
// returns the content, where reading stopped and whether the quote closed.
func quotedValue(s string, i int) (string, int, bool) {
	start := i
	for i < len(s) {
		switch s[i] {
		case '"':
			return s[start:i], i + 1, true
		case '\\':
			if i+1 < len(s) {
				return unescapeQuoted(s, start)
			}
		}
		i++
	}
	return "", i, false
}

// unescapeQuoted is quotedValue for content with an escape in it.
func unescapeQuoted(s string, i int) (string, int, bool) {
	var b strings.Builder
	for i < len(s) {
		ch := s[i]
		if ch == '\\' && i+1 < len(s) {
			b.WriteByte(s[i+1])
			i += 2
			continue
		}
		i++
		if ch == '"' {
			return b.String(), i, true
		}
		b.WriteByte(ch)
	}
	return "", i, false
}

// field is where the auth-param called name (any case) goes, or nil for
// one that Credentials does not keep.
func (c *Credentials) field(name string) *string {
	var buf [16]byte
	if len(name) > len(buf) {
		return nil
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	switch string(buf[:len(name)]) {
	case "username":
		return &c.Username
	case "realm":
		return &c.Realm
	case "nonce":
		return &c.Nonce
	case "uri":
		return &c.URI
	case "response":
		return &c.Response
	case "algorithm":
		return &c.Algorithm
	case "qop":
		return &c.QOP
	case "nc":
		return &c.NC
	case "cnonce":
		return &c.CNonce
	case "opaque":
		return &c.Opaque
	}
	return nil
}

// nonces issues self-validating nonces: a timestamp and an HMAC of it, so no
// state is kept per challenge and an expired nonce is told apart from a forged one.
type nonces struct {
	key    []byte
	ttl    time.Duration
	skew   atomic.Int64  // added to the clock; tests age nonces with it
	serial atomic.Uint32 // makes nonces of the same instant differ

	// The HMAC-SHA256 key blocks (RFC 2104): key XOR ipad and key XOR opad,
	// so that a MAC is two sha256.Sum256 calls on the stack.
	ipad, opad [sha256.BlockSize]byte

	// The highest nonce count accepted per nonce (qop=auth): a replayed
	// request (the same or a lower nc) is refused as stale. Two generations,
	// swapped every ttl, keep every unexpired nonce's record at O(1) cost.
	// A nonce is known by its time and serial (the MAC follows from them).
	mu        sync.Mutex
	used, old map[nonceID]uint64
	rotated   time.Time
}

// nonceID is the time and serial number a nonce carries.
type nonceID [12]byte

// nonceLen is the length of a nonce: 24 bytes in unpadded base64.
const nonceLen = 32

// use records nc for the nonce id and reports ErrStaleNonce for a replay.
func (n *nonces) use(id nonceID, nc string) error {
	count, err := strconv.ParseUint(nc, 16, 32)
	if err != nil || count == 0 {
		return ErrBadNonce
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.used == nil || now.Sub(n.rotated) > n.ttl {
		n.old, n.used, n.rotated = n.used, make(map[nonceID]uint64, len(n.used)), now
	}
	last, ok := n.used[id]
	if !ok {
		last = n.old[id]
	}
	if count <= last {
		return ErrStaleNonce
	}
	n.used[id] = count
	return nil
}

func newNonces(ttl time.Duration) *nonces {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	n := &nonces{key: k, ttl: ttl}
	for i := range n.ipad {
		n.ipad[i], n.opad[i] = 0x36, 0x5c
	}
	for i, b := range k { // a key no longer than a block is used as it is
		n.ipad[i] ^= b
		n.opad[i] ^= b
	}
	return n
}

func (n *nonces) now() time.Time { return time.Now().Add(time.Duration(n.skew.Load())) }

// mac is the first 12 bytes of HMAC-SHA256(key, id).
func (n *nonces) mac(id *nonceID) (out [12]byte) {
	var in [sha256.BlockSize + len(nonceID{})]byte
	copy(in[:], n.ipad[:])
	copy(in[sha256.BlockSize:], id[:])
	inner := sha256.Sum256(in[:])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], n.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	sum := sha256.Sum256(outer[:])
	copy(out[:], sum[:])
	return out
}

// issue makes a nonce: the time and a serial number (two challenges in the
// same clock tick must not share a nonce, or the second one's nc=1 would
// look like a replay), then an HMAC of both.
func (n *nonces) issue() string {
	var b [24]byte
	var id nonceID
	binary.BigEndian.PutUint64(id[:8], uint64(n.now().UnixNano()))
	binary.BigEndian.PutUint32(id[8:], n.serial.Add(1))
	mac := n.mac(&id)
	copy(b[:12], id[:])
	copy(b[12:], mac[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check reports whether nonce is one of ours (ErrBadNonce if not) and
// unexpired (ErrStaleNonce if not), and returns its id.
func (n *nonces) check(nonce string) (nonceID, error) {
	var id nonceID
	var b [24]byte
	var src [nonceLen]byte
	if len(nonce) != nonceLen {
		return id, ErrBadNonce
	}
	copy(src[:], nonce)
	if k, err := base64.RawURLEncoding.Decode(b[:], src[:]); err != nil || k != len(b) {
		return id, ErrBadNonce
	}
	copy(id[:], b[:12])
	mac := n.mac(&id)
	if !hmac.Equal(b[12:], mac[:]) {
		return id, ErrBadNonce
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(id[:8])))
	if n.now().Sub(issued) > n.ttl {
		return id, ErrStaleNonce
	}
	return id, nil
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
	if _, err := d.nonces.check(nonce); nonce == "" || err != nil {
		nonce = d.nonces.issue()
	}
	out := make([]string, 0, len(d.algos))
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
	var algo string
	switch {
	case asciiEqualFold(c.Algorithm, "MD5"):
		algo = "MD5"
	case asciiEqualFold(c.Algorithm, "SHA-256"):
		algo = "SHA-256"
	default:
		if algo = strings.ToUpper(c.Algorithm); algo != "MD5" && algo != "SHA-256" {
			return ErrAlgorithm
		}
	}
	var ha1Buf, respBuf [sha256.Size * 2]byte
	ha1, ok := u.ha1Into(algo, d.realm, &ha1Buf)
	if !ok {
		return ErrAlgorithm
	}
	want := responseInto(algo, ha1, method, &c, &respBuf)
	id, err := d.nonces.check(c.Nonce)
	if err != nil {
		// Check the password first: a stale nonce with a wrong password is a
		// wrong password, and must not teach the client to simply retry.
		if errors.Is(err, ErrStaleNonce) && responseMatches(want, c.Response) {
			return ErrStaleNonce
		}
		if errors.Is(err, ErrStaleNonce) {
			return ErrWrongPassword
		}
		return err
	}
	if !responseMatches(want, c.Response) {
		return ErrWrongPassword
	}
	if c.QOP != "" { // RFC 7616 3.4: the nonce count must grow; a replay is refused
		return d.nonces.use(id, c.NC)
	}
	return nil
}

// responseMatches compares the expected response (lower-case hex) with the
// one sent, in any case, in constant time.
func responseMatches(want []byte, got string) bool {
	var buf [sha256.Size * 2]byte
	if len(got) != len(want) {
		return false
	}
	for i := 0; i < len(got); i++ {
		ch := got[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return subtle.ConstantTimeCompare(want, buf[:len(got)]) == 1
}

// expectedResponse is the response a client must send (lower-case hex).
func expectedResponse(algo, ha1, method string, c Credentials) string {
	var out [sha256.Size * 2]byte
	return string(responseInto(algo, []byte(ha1), method, &c, &out))
}

// responseInto writes the digest response for credentials c, method and
// ha1 into out (RFC 7616 3.4.1; without qop, RFC 2069) and returns it.
func responseInto(algo string, ha1 []byte, method string, c *Credentials, out *[sha256.Size * 2]byte) []byte {
	var buf [384]byte // grows onto the heap for a longer URI or nonce only
	b := append(buf[:0], method...)
	b = append(b, ':')
	b = append(b, c.URI...)
	var ha2Buf [sha256.Size * 2]byte
	ha2 := hashHexInto(algo, b, &ha2Buf)
	b = append(buf[:0], ha1...)
	b = append(b, ':')
	b = append(b, c.Nonce...)
	if c.QOP == "auth" {
		b = append(b, ':')
		b = append(b, c.NC...)
		b = append(b, ':')
		b = append(b, c.CNonce...)
		b = append(b, ":auth"...)
	}
	b = append(b, ':')
	b = append(b, ha2...)
	return hashHexInto(algo, b, out)
}
