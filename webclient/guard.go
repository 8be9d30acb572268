package webclient

import (
	"net"
	"net/http"
	"time"
)

// Guard is the brute-force guard the web side shares with SIP: a source
// that keeps failing to sign in (a page's password, the API's token) is
// slowed down, then banned from every way in.
type Guard interface {
	// Banned reports whether ip is refused now.
	Banned(ip string) bool
	// Failed records a failure as user from ip through via and returns how
	// long to hold the answer back.
	Failed(ip, user, via string) time.Duration
	// Succeeded forgets ip's and user's failures (not a ban).
	Succeeded(ip, user string)
}

// WithGuard shares a brute-force guard (cmd/voxgate gives the SIP side's).
func WithGuard(g Guard) Option { return func(s *Server) { s.guard = g } }

// noGuard admits everyone: a server built without WithGuard (tests).
type noGuard struct{}

func (noGuard) Banned(string) bool                          { return false }
func (noGuard) Failed(string, string, string) time.Duration { return 0 }
func (noGuard) Succeeded(string, string)                    {}

// remoteIP is the address a request came from (the TCP peer: voxgate does
// not trust forwarding headers).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// refuseBanned answers a request from a banned address; it reports whether
// it did.
func (s *Server) refuseBanned(w http.ResponseWriter, r *http.Request) bool {
	if !s.guard.Banned(remoteIP(r)) {
		return false
	}
	writeError(w, http.StatusForbidden, "too many failed sign-ins from your address: try again later")
	return true
}

// failed records a failure and holds the answer back as the guard says
// (until the client gives up).
func (s *Server) failed(r *http.Request, user, via string) {
	if wait := s.guard.Failed(remoteIP(r), user, via); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
	}
}
