package webclient

import "sync"

// candidateGate keeps the ICE candidates voxgate gathers from reaching the
// page before the answer they belong to: pion starts gathering inside
// SetLocalDescription, so without it a candidate can overtake the answer and
// the browser drops it ("no remote description"), leaving ICE with nothing
// to check.
type candidateGate struct {
	mu   sync.Mutex
	send func(Message)
	open bool
	held []Message
}

// hold queues candidates until the next release.
func (q *candidateGate) hold() {
	q.mu.Lock()
	q.open = false
	q.mu.Unlock()
}

// candidate sends m now, or after the answer if one is pending.
func (q *candidateGate) candidate(m Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.open {
		q.held = append(q.held, m)
		return
	}
	q.send(m)
}

// release sends the answer, then the candidates gathered before it.
func (q *candidateGate) release(answer Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.send(answer)
	for _, m := range q.held {
		q.send(m)
	}
	q.held = nil
	q.open = true
}
