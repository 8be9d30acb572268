package peertest

import (
	"time"

	"github.com/voxgate/voxgate/audio"
)

// FirstTone returns when the first captured packet at or after t0 that
// carries freq (a 20 ms packet at 8 kHz, at least share 0.2 of its energy)
// arrived; false when none did.
func (c *Capture) FirstTone(freq float64, t0 time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, at := range c.at {
		if at.Before(t0) {
			continue
		}
		end := len(c.pcm)
		if i+1 < len(c.idx) {
			end = c.idx[i+1]
		}
		if seg := c.pcm[c.idx[i]:end]; len(seg) >= 160 && audio.ToneSeconds(seg[:160], 8000, freq, 0.2) > 0 {
			return at, true
		}
	}
	return time.Time{}, false
}

// LastTone returns when the last captured packet at or after t0 that
// carries freq (as FirstTone counts it) arrived; false when none did.
func (c *Capture) LastTone(freq float64, t0 time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.at) - 1; i >= 0 && !c.at[i].Before(t0); i-- {
		end := len(c.pcm)
		if i+1 < len(c.idx) {
			end = c.idx[i+1]
		}
		if seg := c.pcm[c.idx[i]:end]; len(seg) >= 160 && audio.ToneSeconds(seg[:160], 8000, freq, 0.2) > 0 {
			return c.at[i], true
		}
	}
	return time.Time{}, false
}
