package bridge

import (
	"github.com/voxgate/voxgate/audio"
)

// A room mixes at NarrowRate by itself while every leg in it is narrowband
// (its codec decodes and encodes at 8 kHz: G.711), and at its configured
// rate while a wideband leg (G.722, Opus, a browser) is in or it records
// (a recording keeps one rate). A G.711 leg in a narrow room needs no
// resampler either way. Only the narrowband legs' paths change at a
// switch (a wideband leg is only ever in a wide room), and each goes on
// from where it was (see retimer): same jitter buffer, decoder and
// concealment, same encoder, and neither a gap nor a repeat in the stream.

// narrowing is a Room's state for its switches of rate.
type narrowing struct {
	// noNarrow (tests, benchmarks): mix at the configured rate always.
	noNarrow bool
	// naiveSwitch (tests): switch without carrying the paths' state over
	// (fresh resamplers, no delay lines), to measure what that avoids.
	naiveSwitch bool
	switches    uint64 // times the room changed its rate
}

// followRate makes a narrowband path of a leg follow the room's rate.
func (r *Room) followRate(t *retimer, codecIn bool) error {
	codec := t.in
	if !codecIn {
		codec = t.out
	}
	if codec != NarrowRate || r.cfg.Rate == NarrowRate {
		return nil
	}
	return t.follow(codecIn, r.cfg.Rate)
}

// newEgressConv returns the stage from the room's rate to an encoder's.
func (r *Room) newEgressConv(encRate int) (*retimer, error) {
	t, err := newRetimer(r.cfg.Rate, encRate, r.cfg.Rate/50)
	if err != nil {
		return nil, err
	}
	return t, r.followRate(t, false)
}

// narrowband reports whether the leg's audio is 8 kHz both ways.
func (m *member) narrowband() bool {
	return m.in.dec.rate() <= NarrowRate && m.enc.rate() <= NarrowRate
}

// wantRateLocked is the rate the room should mix at now.
func (r *Room) wantRateLocked() int {
	if r.noNarrow || r.rec != nil || r.cfg.Rate == NarrowRate {
		return r.cfg.Rate
	}
	if len(r.members) == 0 {
		return r.rate
	}
	for _, m := range r.members {
		if !m.narrowband() {
			return r.cfg.Rate
		}
	}
	return NarrowRate
}

// fitRateLocked switches the room's rate when its legs call for it, at the
// start of a tick, and brings prompts made at another rate to it.
func (r *Room) fitRateLocked() {
	if want := r.wantRateLocked(); want != r.rate {
		r.setRateLocked(want)
	}
	r.fitPrompt(r.prompt)
	for _, m := range r.members {
		r.fitPrompt(m.prompt)
	}
}

// setRateLocked moves the room, and every leg's paths, to rate.
func (r *Room) setRateLocked(rate int) {
	r.log.Info("mixing rate", "from", r.rate, "to", rate, "legs", len(r.members))
	r.rate, r.frame = rate, rate/50
	r.mixer = audio.NewMixMinus(r.frame)
	r.zero = r.zero[:r.frame]
	r.promptBuf = r.promptBuf[:r.frame]
	for k, m := range r.members {
		r.fitMemberLocked(m)
		r.outs[k] = m.mix
	}
	for _, g := range r.groupList {
		r.fitConv(g.conv)
	}
	r.switches++
}

// fitMemberLocked brings a leg's buffers and paths to the room's rate.
func (r *Room) fitMemberLocked(m *member) {
	m.input = m.input[:r.frame]
	m.mix = m.mix[:r.frame]
	r.fitConv(m.in.conv)
	r.fitConv(m.conv)
}

func (r *Room) fitConv(t *retimer) {
	if err := t.setRoomRate(r.rate, r.naiveSwitch); err != nil {
		// Only mixing rates get here: a programming error.
		r.log.Error("mixing rate switch", "err", err, "stage", t.String())
	}
}

// fitPrompt converts what is left of a prompt to the mixing rate.
func (r *Room) fitPrompt(p *prompt) {
	if p == nil || p.rate == r.rate {
		return
	}
	pcm, err := resampleWAV(&audio.WAV{Rate: p.rate, Samples: p.pcm[p.pos:]}, r.rate)
	if err != nil {
		pcm = nil
	}
	p.pcm, p.pos, p.rate = pcm, 0, r.rate
}
