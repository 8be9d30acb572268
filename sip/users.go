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

// ha1 returns the digest HA1 for algo ("MD5" or "SHA-256") and whether the
// user's stored secret allows that algorithm.
func (u *User) ha1(algo, realm string) (string, bool) {
	if u.Password != "" {
		return hashHex(algo, u.Name+":"+realm+":"+u.Password), true
	}
	switch {
	case algo == "MD5" && len(u.HA1) == 32, algo == "SHA-256" && len(u.HA1) == 64:
		return u.HA1, true
	}
	return "", false
}

func hashHex(algo, s string) string {
	if algo == "SHA-256" {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
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
