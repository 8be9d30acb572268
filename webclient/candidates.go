package webclient

import "sync"

// CandidateGate keeps ICE candidates from overtaking the message they
// belong to: pion starts gathering inside SetLocalDescription, so without
// it a candidate can go out first. voxgate holds its own candidates until
// its answer has gone (else the browser drops them, "no remote
// description", leaving ICE with nothing to check); a Go client of the
// protocol (a pion bot, the tests' pages) holds its own until its "dial",
// "join" or "answer" has gone.
type CandidateGate struct {
	mu   sync.Mutex
	send func(Message)
	open bool
	held []Message
}

// NewCandidateGate is a gate that sends with send and holds candidates
// until the first Release.
func NewCandidateGate(send func(Message)) *CandidateGate { return &CandidateGate{send: send} }

// Hold queues candidates until the next Release.
func (q *CandidateGate) Hold() {
	q.mu.Lock()
	q.open = false
	q.mu.Unlock()
}

// Candidate sends m now, or after the message it belongs to if that is
// pending.
func (q *CandidateGate) Candidate(m Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.open {
		q.held = append(q.held, m)
		return
	}
	q.send(m)
}

// Release sends first (the answer, or a client's offer), then the
// candidates gathered before it.
func (q *CandidateGate) Release(first Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.send(first)
	for _, m := range q.held {
		q.send(m)
	}
	q.held = nil
	q.open = true
}
