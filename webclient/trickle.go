package webclient

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Candidates that come before their call: a page's ICE agent may trickle
// its first candidates before the "dial", "join" or "answer" that starts
// the call has gone out (pion gathers in a goroutine of its own from
// SetLocalDescription on, and so may other clients). Like Janus, voxgate
// holds them and adds them once the call's offer is in, rather than
// refusing them; a page that sends candidates for a call that never comes
// is told so after earlyWait (Server.earlyWait).
const (
	earlyWait     = 10 * time.Second
	maxEarlyCalls = 4  // call ids with candidates held, per page
	maxEarlyCands = 32 // candidates held per call id
)

// earlyCands are the candidates held for one call id.
type earlyCands struct {
	cands []webrtc.ICECandidateInit
	timer *time.Timer
}

// holdEarly keeps c for the call id that has not started; it reports false
// when the page holds too many already (the caller refuses it).
func (g *signal) holdEarly(id string, c webrtc.ICECandidateInit) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.early[id]
	if e == nil {
		if len(g.early) >= maxEarlyCalls || g.closed {
			return false
		}
		e = &earlyCands{}
		g.early[id] = e
		e.timer = time.AfterFunc(g.s.earlyWait, func() {
			g.mu.Lock()
			held := g.early[id] == e
			if held {
				delete(g.early, id)
			}
			g.mu.Unlock()
			if held {
				g.fail(id, "no such call: its candidates came, but no call with this id started within "+g.s.earlyWait.String())
			}
		})
	}
	if len(e.cands) >= maxEarlyCands {
		return false
	}
	e.cands = append(e.cands, c)
	return true
}

// takeEarly returns and forgets the candidates held for call id.
func (g *signal) takeEarly(id string) []webrtc.ICECandidateInit {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.early[id]
	if e == nil {
		return nil
	}
	e.timer.Stop()
	delete(g.early, id)
	return e.cands
}

// dropEarly forgets every held candidate (the page has gone).
func (g *signal) dropEarly() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for id, e := range g.early {
		e.timer.Stop()
		delete(g.early, id)
	}
}
