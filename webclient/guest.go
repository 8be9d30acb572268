package webclient

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voxgate/voxgate/internal/config"
)

// Errors of guest links, shown to whoever opened the link.
var (
	ErrGuestExpired = errors.New("this guest link has expired: ask for a new one")
	ErrGuestInvalid = errors.New("this guest link is not valid (damaged, or not made by this server)")
	// ErrGuestRoom: a guest tried a room (or a number) other than its link's.
	ErrGuestRoom = errors.New("a guest link joins its own room only")
)

// Limits of guest links.
const (
	minGuestKey     = 32 // bytes of web.guest_key
	defaultGuestTTL = time.Hour
	maxGuestTTL     = 30 * 24 * time.Hour
	maxNameRunes    = 64
)

// GuestClaims are what a guest link's JWT says (HS256): the room it joins
// and, when the link fixes it, the guest's display name; exp, iat and jti
// are the registered claims.
type GuestClaims struct {
	Room string `json:"room"`
	Name string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// GuestLinkRequest is the body of POST /api/v1/rooms/{room}/guest-links.
type GuestLinkRequest struct {
	// TTLSeconds is how long the link lets guests in (default 3600, at
	// most 30 days).
	TTLSeconds int `json:"ttl_seconds"`
	// Name fixes the guest's display name (empty: the guest types one).
	Name string `json:"name"`
}

// GuestLink is a new guest link.
type GuestLink struct {
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// WithGuestKey signs guest links with key (at least 32 bytes) when
// web.guest_key is not set: e.g. a key kept in the store, so that links
// outlive a restart without one in the config.
func WithGuestKey(key []byte) Option { return func(s *Server) { s.guestKey = key } }

// guestSigner signs and checks guest links with one key.
type guestSigner struct {
	key []byte
	now func() time.Time
}

// decodeGuestKey reads web.guest_key: base64 (standard or URL alphabet,
// padded or not) of at least 32 bytes.
func decodeGuestKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) < minGuestKey {
				return nil, fmt.Errorf("the key is %d bytes: want at least %d (e.g. `openssl rand -base64 32`)", len(k), minGuestKey)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("not base64: want at least %d random bytes in base64 (e.g. `openssl rand -base64 32`)", minGuestKey)
}

// validateGuestKey checks web.guest_key.
func (c *Config) validateGuestKey() error {
	if c.GuestKey == "" {
		c.guestKey = nil
		return nil
	}
	k, err := decodeGuestKey(c.GuestKey)
	if err != nil {
		return config.FieldErr("guest_key", err)
	}
	c.guestKey = k
	return nil
}

// issue signs a link to room valid for ttl.
func (g *guestSigner) issue(room, name string, ttl time.Duration) (string, time.Time, error) {
	now := g.now()
	exp := now.Add(ttl).Truncate(time.Second)
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	claims := GuestClaims{Room: room, Name: name, RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: hex.EncodeToString(id)}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(g.key)
	return tok, exp, err
}

// verify checks a link's signature (HS256 only: "none" and every other
// algorithm are refused), its expiry and its room.
func (g *guestSigner) verify(token string) (GuestClaims, error) {
	var c GuestClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return g.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(g.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return c, ErrGuestExpired
	case err != nil:
		return c, fmt.Errorf("%w: %v", ErrGuestInvalid, err)
	case checkRoomName(c.Room) != nil || (c.Name != "" && checkDisplayName(c.Name) != nil):
		return c, ErrGuestInvalid
	}
	return c, nil
}

// checkRoomName accepts what a room may be called in a link.
func checkRoomName(room string) error {
	if room == "" || len(room) > 64 || strings.ContainsFunc(room, func(r rune) bool { return unicode.IsControl(r) || r == '/' }) {
		return fmt.Errorf("room %q: want 1 to 64 characters, no '/' or control characters", room)
	}
	return nil
}

// checkDisplayName accepts a guest's display name.
func checkDisplayName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("give a display name")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("a display name is 1 to %d characters, no control characters", maxNameRunes)
	}
	return nil
}

// handleGuestLink is POST /api/v1/rooms/{room}/guest-links.
func (s *Server) handleGuestLink(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	var in GuestLinkRequest
	if !readBody(w, r, &in) {
		return
	}
	ttl := time.Duration(in.TTLSeconds) * time.Second
	if in.TTLSeconds == 0 {
		ttl = defaultGuestTTL
	}
	in.Name = strings.TrimSpace(in.Name)
	var err error
	switch {
	case ttl < time.Minute || ttl > maxGuestTTL:
		err = fmt.Errorf("ttl_seconds %d: want 60 to %d", in.TTLSeconds, int(maxGuestTTL.Seconds()))
	case checkRoomName(room) != nil:
		err = checkRoomName(room)
	case in.Name != "":
		if e := checkDisplayName(in.Name); e != nil {
			err = fmt.Errorf("name: %w", e)
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, exp, err := s.guests.issue(room, in.Name, ttl)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "signing the link: "+err.Error())
		return
	}
	s.audit(r, "guest link made", nil, "room", room, "expires", exp.UTC().Format(time.RFC3339), "fixed_name", in.Name != "")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, http.StatusCreated, GuestLink{URL: scheme + "://" + r.Host + "/?guest=" + tok, Token: tok, Expires: exp.UTC()})
}

// guestLogin signs a guest in from a link: the session it gets may join
// the link's room only, until the link expires.
func (s *Server) guestLogin(w http.ResponseWriter, r *http.Request, token, name string) {
	if s.refuseBanned(w, r) {
		s.loginsRefused.Add(1)
		return
	}
	c, err := s.guests.verify(token)
	if err != nil {
		s.loginsRefused.Add(1)
		s.log.Info("guest sign-in refused", "remote", r.RemoteAddr, "error", err)
		if errors.Is(err, ErrGuestInvalid) { // a forged link is a guess; an expired one is not
			s.failed(r, "", "guest")
			if s.refuseBanned(w, r) {
				return
			}
		}
		msg := err.Error()
		if errors.Is(err, ErrGuestInvalid) {
			msg = ErrGuestInvalid.Error() // not the parser's details
		}
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	if c.Name != "" {
		name = c.Name // the link fixes it
	}
	name = strings.TrimSpace(name)
	if err := checkDisplayName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	exp := c.ExpiresAt.Time
	if max := s.guests.now().Add(s.cfg.SessionTTL); exp.After(max) {
		exp = max
	}
	s.loginsOK.Add(1)
	s.log.Info("guest signed in", "name", name, "room", c.Room, "link_id", c.ID, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.sessions.issueGuest(name, c.Room, exp), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLSCert != "", Expires: exp})
	writeJSON(w, http.StatusOK, sessionInfo{User: name, Guest: true, Room: c.Room, ICEServers: nonNil(s.cfg.ICEServers)})
}

// sessionInfo answers a sign-in and GET /api/v1/session.
type sessionInfo struct {
	User       string      `json:"user"`
	Guest      bool        `json:"guest,omitempty"`
	Room       string      `json:"room,omitempty"`
	ICEServers []ICEServer `json:"iceServers"`
}
