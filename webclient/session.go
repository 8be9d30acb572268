package webclient

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrSession is returned for a missing, forged or expired session.
var ErrSession = errors.New("no valid session")

// sessions issues signed, expiring session tokens: "user|expiry|mac", or
// for a guest "name|expiry|room|mac". No state is kept, so a restart signs
// everyone out (the key is per process).
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &sessions{key: k, ttl: ttl, now: time.Now}
}

func (s *sessions) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// identity is who a session is: a user, or a guest (a display name) who
// may join one room.
type identity struct {
	user string
	room string // a guest's room; "" for a user
}

func (id identity) guest() bool { return id.room != "" }

func (s *sessions) issue(user string) string {
	payload := b64(user) + "|" + strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return payload + "|" + s.mac(payload)
}

// issueGuest signs a guest in to room until exp.
func (s *sessions) issueGuest(name, room string, exp time.Time) string {
	payload := b64(name) + "|" + strconv.FormatInt(exp.Unix(), 10) + "|" + b64(room)
	return payload + "|" + s.mac(payload)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// check returns who holds a valid token.
func (s *sessions) check(token string) (identity, error) {
	i := strings.LastIndexByte(token, '|')
	if i < 0 {
		return identity{}, ErrSession
	}
	payload, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return identity{}, ErrSession
	}
	parts := strings.Split(payload, "|")
	if len(parts) != 2 && len(parts) != 3 {
		return identity{}, ErrSession
	}
	e, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.now().Unix() > e {
		return identity{}, ErrSession
	}
	user, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return identity{}, ErrSession
	}
	id := identity{user: string(user)}
	if len(parts) == 3 {
		room, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(room) == 0 {
			return identity{}, ErrSession
		}
		id.room = string(room)
	}
	return id, nil
}
