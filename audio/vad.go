package audio

import "math"

// LevelDBFS returns the RMS level of pcm in dB relative to full scale
// (a full-scale sine is -3 dBFS; silence is -127).
func LevelDBFS(pcm []int16) float64 {
	e := Energy(pcm)
	if e <= 0 {
		return -127
	}
	return max(10*math.Log10(e), -127)
}

// VADConfig tunes a VAD. Zero values take the defaults.
type VADConfig struct {
	// Threshold is how far above the tracked noise floor a frame must be to
	// count as speech (default 9 dB); Floor is the lowest level that can be
	// speech at all (default -50 dBFS).
	Threshold, Floor float64
	// Onset frames of speech in a row start talking (default 2: 40 ms);
	// Hangover frames of non-speech in a row stop it (default 15: 300 ms),
	// so talk events do not flicker between words.
	Onset, Hangover int
}

// VAD is an energy voice-activity detector with an adaptive noise floor and
// hangover. It works on any leg, whatever the codec, since it looks at PCM.
type VAD struct {
	cfg     VADConfig
	noise   float64
	started bool
	talking bool
	run     int // frames in a row contradicting the current state
	level   float64
}

// NewVAD returns a detector.
func NewVAD(cfg VADConfig) *VAD {
	if cfg.Threshold == 0 {
		cfg.Threshold = 9
	}
	if cfg.Floor == 0 {
		cfg.Floor = -50
	}
	if cfg.Onset == 0 {
		cfg.Onset = 2
	}
	if cfg.Hangover == 0 {
		cfg.Hangover = 15
	}
	return &VAD{cfg: cfg, noise: -70}
}

// Update takes one frame and reports whether the leg is talking and whether
// that changed with this frame (a talk start or stop event).
func (v *VAD) Update(pcm []int16) (talking, changed bool) {
	lvl := LevelDBFS(pcm)
	v.level = lvl
	if !v.started {
		v.started = true
		v.noise = min(lvl, -40)
	}
	// The floor follows quiet frames quickly and loud ones very slowly, so
	// steady background noise is learned but speech is not.
	if lvl < v.noise {
		v.noise += (lvl - v.noise) * 0.2
	} else {
		v.noise += (lvl - v.noise) * 0.002
	}
	speech := lvl > v.cfg.Floor && lvl > v.noise+v.cfg.Threshold
	if speech == v.talking {
		v.run = 0
		return v.talking, false
	}
	v.run++
	need := v.cfg.Hangover
	if speech {
		need = v.cfg.Onset
	}
	if v.run >= need {
		v.talking = speech
		v.run = 0
		return v.talking, true
	}
	return v.talking, false
}

// Level is the last frame's level in dBFS.
func (v *VAD) Level() float64 { return v.level }

// Talking reports the current state.
func (v *VAD) Talking() bool { return v.talking }
