package webclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// signal is one WebSocket: its messages and its calls.
type signal struct {
	s    *Server
	conn *websocket.Conn
	user string // the signed-in user, or a guest's display name
	// room is a guest's room: the only one it may join ("" for a user).
	room string
	// legID prefixes its calls' ids: the user, or a guest's random id
	// (display names are neither unique nor users).
	legID string
	log   *slog.Logger

	wmu   sync.Mutex
	mu    sync.Mutex
	calls map[string]*Call
	over  map[string]bool // ids of its calls that ended (at most maxOver)
	// early holds candidates that came before their call (trickle.go).
	early  map[string]*earlyCands
	closed bool // the page has gone: nothing more is held
	wg     sync.WaitGroup
}

func newSignal(s *Server, conn *websocket.Conn, id identity) *signal {
	g := &signal{s: s, conn: conn, user: id.user, room: id.room, legID: id.user, calls: map[string]*Call{}, over: map[string]bool{}, early: map[string]*earlyCands{}}
	log := s.log.With("user", id.user, "remote", conn.RemoteAddr())
	if id.guest() {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		g.legID = "guest-" + hex.EncodeToString(b)
		log = log.With("guest_room", id.room, "guest_id", g.legID)
	}
	g.log = log
	return g
}

func (g *signal) send(m Message) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	_ = g.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = g.conn.WriteJSON(m)
}

func (g *signal) fail(id, msg string) { g.send(Message{Type: "error", ID: id, Message: msg}) }

func (g *signal) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		g.dropEarly()
		g.mu.Lock()
		calls := make([]*Call, 0, len(g.calls))
		for _, c := range g.calls {
			calls = append(calls, c)
		}
		g.mu.Unlock()
		// The calls end before their contexts do: a handler that sees its
		// context end then finds the call over (the page hung up), not
		// voxgate stopping.
		for _, c := range calls {
			c.end("page closed")
		}
		cancel()
		g.wg.Wait()
		g.conn.Close()
	}()
	go func() { <-ctx.Done(); g.conn.Close() }()
	g.conn.SetReadLimit(MaxMessage)
	if g.room == "" { // a guest is nobody's page: nothing rings it
		g.s.register(g)
		defer g.s.unregister(g)
	}
	g.send(Message{Type: "hello", User: g.user, Room: g.room, Leg: g.legID})
	g.log.Info("browser connected")
	for {
		_, data, err := g.conn.ReadMessage()
		if err != nil {
			g.log.Info("browser disconnected", "reason", err.Error())
			return
		}
		m, err := DecodeMessage(data)
		if err != nil {
			g.fail(m.ID, err.Error())
			continue
		}
		g.handle(ctx, m)
	}
}

// maxOver bounds how many ended calls a socket remembers.
const maxOver = 64

// wasCall reports whether id is a call of this page that ended.
func (g *signal) wasCall(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.over[id]
}

func (g *signal) call(id string) *Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[id]
}

func (g *signal) handle(ctx context.Context, m Message) {
	switch m.Type {
	case "ping":
		g.send(Message{Type: "pong"})
	case "dial", "join":
		if g.room != "" && (m.Type != "join" || m.Room != g.room) {
			g.fail(m.ID, fmt.Sprintf("%v: room %s", ErrGuestRoom, g.room))
			return
		}
		if g.call(m.ID) != nil {
			g.fail(m.ID, "a call with this id is in progress (renegotiation is not supported)")
			return
		}
		if err := g.dial(ctx, m); err != nil {
			g.fail(m.ID, err.Error())
		}
	case "answer":
		if g.room != "" {
			g.fail(m.ID, "a guest takes no calls")
			return
		}
		r := g.s.ring(m.ID)
		if r == nil || g.call(m.ID) != nil {
			g.fail(m.ID, "no such incoming call (it may have been answered elsewhere or cancelled)")
			return
		}
		c, err := g.newCall(ctx, m.ID, m.SDP, r.from)
		if err != nil {
			g.fail(m.ID, err.Error())
			return
		}
		if !r.accept(c) {
			c.end("answered elsewhere")
		}
	case "reject":
		if r := g.s.ring(m.ID); r != nil && g.room == "" {
			r.reject()
		}
	case "offer":
		c := g.call(m.ID)
		if c == nil {
			g.fail(m.ID, "no such call")
			return
		}
		c.cands.Hold() // an ICE restart gathers anew
		if err := c.renegotiate(m.SDP); err != nil {
			c.cands.Release(Message{Type: "error", ID: m.ID, Message: "renegotiation failed: " + err.Error()})
			return
		}
		c.cands.Release(Message{Type: "answer", ID: m.ID, SDP: c.pc.LocalDescription().SDP})
	case "candidate":
		c := g.call(m.ID)
		init := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex}
		if c == nil {
			// Late candidates of a call that just ended (or was refused)
			// are dropped: an error here could reach the page before the
			// call's "ended" and be taken for the reason. Early ones, of a
			// call not started yet, wait for it.
			if g.wasCall(m.ID) {
				return
			}
			if init.Candidate != "" { // "" ends the candidates
				if _, err := ice.UnmarshalCandidate(init.Candidate); err != nil {
					g.fail(m.ID, "bad candidate: "+err.Error())
					return
				}
			}
			if !g.holdEarly(m.ID, init) {
				g.fail(m.ID, "no such call")
			}
			return
		}
		if err := c.pc.AddICECandidate(init); err != nil {
			select {
			case <-c.done: // the call ended as the candidate came: nothing to tell
			default:
				g.fail(m.ID, "bad candidate: "+err.Error())
			}
		}
	case "hangup":
		if c := g.call(m.ID); c != nil {
			c.end("hung up by the page")
		}
	case "mute":
		if c := g.call(m.ID); c != nil {
			c.setMuted(*m.On)
		}
	case "room-stats":
		if err := g.roomStats(m); err != nil {
			g.fail(m.ID, err.Error())
		}
	case "moderate":
		if err := g.moderate(m); err != nil {
			g.fail(m.ID, err.Error())
			return
		}
		g.send(Message{Type: "moderated", ID: m.ID, Action: m.Action, Leg: m.Leg})
	case "dtmf":
		c := g.call(m.ID)
		if c == nil {
			g.fail(m.ID, "no such call")
			return
		}
		c.mu.Lock()
		f := c.onDTMF
		c.mu.Unlock()
		if f == nil {
			g.fail(m.ID, "this destination takes no DTMF")
			return
		}
		for _, d := range m.Digits { // checked when the message was parsed
			f(d)
		}
	}
}

// dial answers a browser's offer and hands the call to the handler.
func (g *signal) dial(ctx context.Context, m Message) error {
	c, err := g.newCall(ctx, m.ID, m.SDP, m.Number)
	if err != nil {
		return err
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-cctx.Done():
			}
		}()
		if g.s.handler != nil {
			g.s.handler.HandleCall(cctx, c)
		}
		c.end("ended")
	}()
	return nil
}

// newCall answers the page's SDP offer with a PeerConnection of ours and
// registers the call under the page's id until it ends.
func (g *signal) newCall(ctx context.Context, id, offer, dialed string) (*Call, error) {
	m := Message{ID: id, SDP: offer, Number: dialed}
	// Candidates the page sent ahead of its offer: taken now (the read loop
	// handles nothing else meanwhile), added once the call is listed, or
	// dropped with it if it cannot start.
	early := g.takeEarly(id)
	cfg := webrtc.Configuration{}
	for _, s := range g.s.cfg.ICEServers {
		cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	pc, err := g.s.api.NewPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	c, err := newLeg(pc, g.legID+"/"+m.ID, g.log.With("call_id", g.legID+"/"+m.ID, "dialed", m.Number)) // the switchboard's call_id
	if err != nil {
		pc.Close()
		return nil, err
	}
	c.user, c.dialed, c.guestRoom = g.user, m.Number, g.room
	c.send = func(msg Message) {
		if msg.ID == c.id {
			msg.ID = m.ID // the page knows its own id
		}
		g.send(msg)
	}
	c.cands = NewCandidateGate(g.send)
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		j := cand.ToJSON()
		c.cands.Candidate(Message{Type: "candidate", ID: m.ID, Candidate: &Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		c.log.Debug("peer connection", "state", st.String())
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			c.end("connection " + st.String())
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		pc.Close()
		return nil, err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		return nil, err
	}
	g.mu.Lock()
	g.calls[m.ID] = c
	g.mu.Unlock()
	c.cands.Release(Message{Type: "answer", ID: m.ID, SDP: pc.LocalDescription().SDP})
	for _, cand := range early {
		if err := pc.AddICECandidate(cand); err != nil {
			g.fail(m.ID, "bad candidate: "+err.Error())
		}
	}
	c.log.Info("browser call", "early_candidates", len(early))
	g.wg.Add(1)
	go func() { // the call leaves the page's list when it ends
		defer g.wg.Done()
		<-c.done
		g.mu.Lock()
		delete(g.calls, m.ID)
		if len(g.over) >= maxOver {
			clear(g.over)
		}
		g.over[m.ID] = true
		g.mu.Unlock()
	}()
	return c, nil
}

// callCount is the number of calls the page has now.
func (g *signal) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}
