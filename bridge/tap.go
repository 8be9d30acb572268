package bridge

import (
	"errors"

	"github.com/voxgate/voxgate/audio"
)

// TapPeer gets a room leg's audio each tick (a bot forking a call): what
// the leg says and what it hears, 20 ms each at Rate. Put runs on the
// room's clock: it must not block or keep the slices.
type TapPeer interface {
	Rate() int
	Put(said, heard []int16)
}

// ErrTapped: the leg has a tap already.
var ErrTapped = errors.New("the leg is tapped already")

// tap is a member's tap: resamplers from the room's rate to the peer's.
type tap struct {
	peer      TapPeer
	rsIn      *audio.Resampler // nil when the rates are equal
	rsOut     *audio.Resampler
	in, out   []int16
	heard     []int16 // this tick's frame the member hears (set by tickLocked)
	silence   []int16
	roomFrame int
}

// Tap hands what leg id says and hears to peer every tick, from now until
// Untap or the leg leaves the room (then Put is just no longer called).
// What a muted leg says is silence to the tap, as to the room.
func (r *Room) Tap(id string, peer TapPeer) error {
	rate := peer.Rate()
	if err := audio.CheckMixRate(rate); err != nil {
		return err
	}
	t := &tap{peer: peer, in: make([]int16, 0, rate/50), out: make([]int16, 0, rate/50)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := t.setRoomRate(r.cfg.Rate); err != nil {
		return err
	}
	m, err := r.member(id)
	if err != nil {
		return err
	}
	if m.tap != nil {
		return ErrTapped
	}
	m.tap = t
	return nil
}

// setRoomRate makes the tap's resamplers for a room mixing at roomRate.
func (t *tap) setRoomRate(roomRate int) error {
	frame, rate := roomRate/50, t.peer.Rate()
	t.roomFrame, t.silence, t.rsIn, t.rsOut = frame, make([]int16, frame), nil, nil
	if rate == roomRate {
		return nil
	}
	var err error
	if t.rsIn, err = audio.NewResampler(roomRate, rate, frame); err != nil {
		return err
	}
	t.rsOut, err = audio.NewResampler(roomRate, rate, frame)
	return err
}

// Untap stops the tap of leg id (none: nothing happens).
func (r *Room) Untap(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, err := r.member(id); err == nil {
		m.tap = nil
	}
}

// hearsLocked is the frame member k hears this tick, as the tick's switch
// will make it: silence, the shared mix, or its own mix (which the switch
// fills). Called before the switch, only for tapped members.
func (r *Room) hearsLocked(k int, m *member, silentRoom bool, shared []int16) []int16 {
	switch {
	case m.deaf && m.prompt == nil, silentRoom && m.prompt == nil:
		return r.zero
	case r.inputs[k] == nil && m.prompt == nil:
		return shared
	}
	return m.mix
}

// tapLocked hands the tapped members' frames to their taps, after the
// tick's mixing.
func (r *Room) tapLocked() {
	for k, m := range r.members {
		t := m.tap
		if t == nil {
			continue
		}
		if t.roomFrame != len(t.heard) { // the room changed its mixing rate
			if t.setRoomRate(len(t.heard)*50) != nil {
				m.tap = nil
				continue
			}
		}
		said := r.inputs[k]
		if said == nil {
			said = t.silence
		}
		if t.rsIn == nil {
			t.peer.Put(said, t.heard)
			continue
		}
		t.in = t.rsIn.Process(t.in[:0], said)
		t.out = t.rsOut.Process(t.out[:0], t.heard)
		t.peer.Put(t.in, t.out)
	}
}
