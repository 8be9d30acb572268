package sip

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sync/atomic"
)

// User is a local account: a desk phone or a browser signs in with it.
// Either Password or a precomputed HA1 (hex of H(user:realm:password)) is set;
// a 32-character HA1 is MD5, a 64-character one SHA-256.
type User struct {
	Name     string
	Password string
	HA1      string
	// SRTP is the media encryption policy of the user's calls ("": the
	// server's sip.srtp).
	SRTP SRTPPolicy
}

// ha1Into writes the digest HA1 for algo ("MD5" or "SHA-256") into buf
// and returns it, and whether the user's stored secret allows that
// algorithm.
func (u *User) ha1Into(algo, realm string, buf *[sha256.Size * 2]byte) ([]byte, bool) {
	if u.Password != "" {
		var in [192]byte // grows onto the heap for long names only
		b := append(in[:0], u.Name...)
		b = append(b, ':')
		b = append(b, realm...)
		b = append(b, ':')
		b = append(b, u.Password...)
		return hashHexInto(algo, b, buf), true
	}
	switch {
	case algo == "MD5" && len(u.HA1) == 32, algo == "SHA-256" && len(u.HA1) == 64:
		return buf[:copy(buf[:], u.HA1)], true
	}
	return nil, false
}

func hashHex(algo, s string) string {
	var out [sha256.Size * 2]byte
	return string(hashHexInto(algo, []byte(s), &out))
}

// hashHexInto writes the lower-case hex of algo's hash of b into out and
// returns it (32 characters for MD5, 64 for SHA-256).
func hashHexInto(algo string, b []byte, out *[sha256.Size * 2]byte) []byte {
	if algo == "SHA-256" {
		h := sha256.Sum256(b)
		return out[:hex.Encode(out[:], h[:])]
	}
	h := md5.Sum(b)
	return out[:hex.Encode(out[:], h[:])]
}

// Users is a replaceable set of accounts, safe for concurrent use; Set swaps
// the whole set at once (for a reload).
type Users struct {
	m atomic.Pointer[map[string]User]
}

// NewUsers returns a set holding us.
func NewUsers(us ...User) *Users {
	u := &Users{}
	u.Set(us)
	return u
}

// Set replaces every account.
func (u *Users) Set(us []User) {
	m := make(map[string]User, len(us))
	for _, x := range us {
		m[x.Name] = x
	}
	u.m.Store(&m)
}

// Lookup returns the account called name.
func (u *Users) Lookup(name string) (User, bool) {
	if u == nil {
		return User{}, false
	}
	m := u.m.Load()
	if m == nil {
		return User{}, false
	}
	x, ok := (*m)[name]
	return x, ok
}

// Checker checks the users' passwords for another way in (the web page's
// sign-in): the same passwords as SIP digest, or the MD5 HA1 for users
// configured that way, hashed with realm.
func (u *Users) Checker(realm string) PasswordChecker { return PasswordChecker{users: u, realm: realm} }

// PasswordChecker checks a user's password against the SIP users.
type PasswordChecker struct {
	users *Users
	realm string
}

// CheckPassword reports whether password is user's.
func (p PasswordChecker) CheckPassword(user, password string) bool {
	u, ok := p.users.Lookup(user)
	switch {
	case !ok:
		return false
	case u.Password != "":
		return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	case len(u.HA1) == 32:
		h := md5.Sum([]byte(user + ":" + p.realm + ":" + password))
		return subtle.ConstantTimeCompare([]byte(u.HA1), []byte(hex.EncodeToString(h[:]))) == 1
	}
	return false
}
