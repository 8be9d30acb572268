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

// sessions issues signed, expiring session tokens: "user|expiry|mac". No
// state is kept, so a restart signs everyone out (the key is per process).
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

func (s *sessions) issue(user string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "|" + strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return payload + "|" + s.mac(payload)
}

// check returns the user of a valid token.
func (s *sessions) check(token string) (string, error) {
	i := strings.LastIndexByte(token, '|')
	if i < 0 {
		return "", ErrSession
	}
	payload, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return "", ErrSession
	}
	u64, exp, ok := strings.Cut(payload, "|")
	if !ok {
		return "", ErrSession
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() > e {
		return "", ErrSession
	}
	user, err := base64.RawURLEncoding.DecodeString(u64)
	if err != nil {
		return "", ErrSession
	}
	return string(user), nil
}
