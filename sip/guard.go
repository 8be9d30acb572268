package sip

import (
	"sync"
	"time"
)

// retries remembers the dialogs (Call-IDs) whose authentication failed
// once, so that a phone resending the same wrong password is told 403.
type retries struct {
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	callIDs map[string]time.Time
}

func newRetries(window time.Duration) *retries {
	return &retries{window: window, now: time.Now, callIDs: map[string]time.Time{}}
}

// repeated records a failed authentication in dialog callID and reports
// whether one had failed there before.
func (r *retries) repeated(callID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if at, ok := r.callIDs[callID]; ok && now.Sub(at) < r.window {
		return true
	}
	if len(r.callIDs) > 10000 {
		for id, at := range r.callIDs {
			if now.Sub(at) >= r.window {
				delete(r.callIDs, id)
			}
		}
	}
	r.callIDs[callID] = now
	return false
}
