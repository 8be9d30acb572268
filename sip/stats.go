package sip

import (
	"sync"
	"sync/atomic"
)

// ServerStats are the SIP side's counters since start, for /metrics.
type ServerStats struct {
	Registrations int               // live contact bindings
	Calls         int               // calls in progress
	Requests      map[string]uint64 // requests received, by method ("other": a method voxgate does not know)
	Responses     map[int]uint64    // final and provisional answers voxgate sent from its handlers, by status
	AuthFailures  uint64            // wrong user or password (digest)
	Malformed     uint64            // requests refused with 400 before parsing finished
	// Stream connections (TCP, TLS): open now, refused over the caps, and
	// accepts that failed for want of file descriptors or otherwise.
	Connections, ConnectionsRefused uint64
	FDExhausted, AcceptErrors       uint64
	// Transactions alive now, and requests refused 503 over the limit.
	Transactions, Overloaded uint64
	// SRTPAuthFailures and SRTCPAuthFailures: SRTP and SRTCP packets
	// dropped unplayed on every call (failed authentication, replays, plain
	// packets on an SRTP leg).
	SRTPAuthFailures, SRTCPAuthFailures uint64
	// TLSHandshakeFailures: TLS connections cut off because their handshake
	// failed or did not finish in time (garbage, a silent peer, a bad
	// certificate).
	TLSHandshakeFailures uint64
}

// counters are updated on the signalling path (not the media path): a
// mutex over small maps whose keys exist after the first request.
type counters struct {
	mu           sync.Mutex
	requests     map[string]uint64
	responses    map[int]uint64
	authFailures atomic.Uint64
	malformed    atomic.Uint64
	connsRefused atomic.Uint64
	fdExhausted  atomic.Uint64
	acceptErrors atomic.Uint64
	overloaded   atomic.Uint64
	srtpFailures [2]atomic.Uint64 // SRTP, SRTCP
}

func newCounters() *counters {
	return &counters{requests: map[string]uint64{}, responses: map[int]uint64{}}
}

func (c *counters) request(m string) {
	c.mu.Lock()
	c.requests[m]++
	c.mu.Unlock()
}

func (c *counters) response(code int) {
	c.mu.Lock()
	c.responses[code]++
	c.mu.Unlock()
}

// ServerStats returns the counters now.
func (s *Server) ServerStats() ServerStats {
	st := ServerStats{Registrations: s.location.count(), Calls: s.Calls(), Requests: map[string]uint64{}, Responses: map[int]uint64{},
		AuthFailures: s.counters.authFailures.Load(), Malformed: s.counters.malformed.Load(),
		ConnectionsRefused: s.counters.connsRefused.Load(), FDExhausted: s.counters.fdExhausted.Load(), AcceptErrors: s.counters.acceptErrors.Load(),
		Transactions: uint64(max(s.inflight.Load(), 0)), Overloaded: s.counters.overloaded.Load(),
		SRTPAuthFailures: s.counters.srtpFailures[0].Load(), SRTCPAuthFailures: s.counters.srtpFailures[1].Load(),
		TLSHandshakeFailures: uint64(max(s.tlsFails.Load(), 0))}
	s.mu.Lock()
	for _, l := range s.streams {
		st.Connections += uint64(l.connections())
	}
	s.mu.Unlock()
	s.counters.mu.Lock()
	for k, v := range s.counters.requests {
		st.Requests[k] = v
	}
	for k, v := range s.counters.responses {
		st.Responses[k] = v
	}
	s.counters.mu.Unlock()
	return st
}

// Registrations returns every live binding, of every user.
func (s *Server) Registrations() []Binding { return s.location.all() }
