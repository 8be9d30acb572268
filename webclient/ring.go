package webclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors of ringing a browser user.
var (
	ErrNotOnline = errors.New("user has no page open")
	// ErrDeclined: the page rejected the call (a caller hears 486 Busy Here).
	ErrDeclined error = declined{}
)

type declined struct{}

func (declined) Error() string { return "the call was declined" }

// SIPStatus is the status a caller is refused with when the page declines.
func (declined) SIPStatus() (int, string) { return 486, "Busy Here" }

// ringing is an incoming call offered to a user's open pages.
type ringing struct {
	from     string
	once     sync.Once
	accepted chan *Call
	rejected chan struct{}
}

func (r *ringing) accept(c *Call) bool {
	ok := false
	r.once.Do(func() { r.accepted <- c; ok = true })
	return ok
}

func (r *ringing) reject() {
	r.once.Do(func() { close(r.rejected) })
}

var ringSeq atomic.Uint64

// WithPresence calls f when a user's first page here opens (online) and
// when the last one closes; a cluster tells the other nodes, so that a
// call for the user reaching another node rings these pages too. f is
// called outside the server's lock, from the page's goroutine, so two
// calls for one user may reach f out of order: f checks Online (or
// OnlineUsers) for the truth.
func WithPresence(f func(user string, online bool)) Option {
	return func(s *Server) { s.presence = f }
}

func (s *Server) register(g *signal) {
	s.mu.Lock()
	first := len(s.online[g.user]) == 0
	if s.online[g.user] == nil {
		s.online[g.user] = map[*signal]struct{}{}
	}
	s.online[g.user][g] = struct{}{}
	s.mu.Unlock()
	if first && s.presence != nil {
		s.presence(g.user, true)
	}
}

func (s *Server) unregister(g *signal) {
	s.mu.Lock()
	delete(s.online[g.user], g)
	last := len(s.online[g.user]) == 0
	if last {
		delete(s.online, g.user)
	}
	s.mu.Unlock()
	if last && s.presence != nil {
		s.presence(g.user, false)
	}
}

// OnlineUsers lists the users with a page open here.
func (s *Server) OnlineUsers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.online))
	for u := range s.online {
		out = append(out, u)
	}
	return out
}

func (s *Server) ring(id string) *ringing {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rings[id]
}

// Online reports whether user has a page open.
func (s *Server) Online(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.online[user]) > 0
}

// Ring offers a call from `from` to every open page of user and returns the
// browser call of the first page that answers. A refusal, or ctx ending (the
// caller hung up, or no answer in time), returns an error and stops the
// ringing on every page.
func (s *Server) Ring(ctx context.Context, user, from string) (*Call, error) {
	id := fmt.Sprintf("in%d", ringSeq.Add(1))
	r := &ringing{from: from, accepted: make(chan *Call, 1), rejected: make(chan struct{})}
	s.mu.Lock()
	pages := make([]*signal, 0, len(s.online[user]))
	for g := range s.online[user] {
		pages = append(pages, g)
	}
	if len(pages) > 0 {
		s.rings[id] = r
	}
	s.mu.Unlock()
	if len(pages) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotOnline, user)
	}
	defer func() {
		s.mu.Lock()
		delete(s.rings, id)
		s.mu.Unlock()
	}()
	for _, g := range pages {
		g.send(Message{Type: "incoming", ID: id, Name: from})
	}
	stopOthers := func(reason string, except *Call) {
		for _, g := range pages {
			if except == nil || g.call(id) != except {
				g.send(Message{Type: "ended", ID: id, Reason: reason})
			}
		}
	}
	select {
	case c := <-r.accepted:
		stopOthers("answered elsewhere", c)
		c.log.Info("incoming browser call answered", "from", from)
		return c, nil
	case <-r.rejected:
		stopOthers("declined", nil)
		return nil, ErrDeclined
	case <-ctx.Done():
		r.reject()
		select {
		case c := <-r.accepted: // answered just now
			c.end("the caller hung up")
		default:
		}
		stopOthers("missed", nil)
		return nil, ctx.Err()
	}
}
