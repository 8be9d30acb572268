package bridge

import "github.com/voxgate/voxgate/audio"

// Connect joins two legs in a call of their own: a two-party room, so the
// audio goes through the same jitter buffer, concealment and codec stages as
// in a conference, with transcoding where the codecs differ. The room mixes
// at the lower of the two codecs' own rates: 8 kHz when either leg is G.711
// (no resampler for a desk phone to browser call: Opus runs at 8 kHz then),
// 16 kHz when either is G.722, else 48 kHz. Close the room to end it; it
// empties by itself when a leg ends.
func Connect(a, b Leg, cfg RoomConfig) (*Room, error) {
	if cfg.Rate == 0 {
		for _, l := range []Leg{a, b} {
			info, ok := audio.LookupCodec(l.Codec().Name)
			if ok && audio.ValidMixRate(info.PCMRate) && (cfg.Rate == 0 || info.PCMRate < cfg.Rate) {
				cfg.Rate = info.PCMRate
			}
		}
	}
	if cfg.Name == "" {
		cfg.Name = a.ID() + "+" + b.ID()
	}
	if cfg.JoinTone == nil {
		cfg.JoinTone = NoTone
	}
	if cfg.LeaveTone == nil {
		cfg.LeaveTone = NoTone
	}
	cfg.Max = 2
	r, err := NewRoom(cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range []Leg{a, b} {
		if err := r.Join(l, JoinOptions{}); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}
