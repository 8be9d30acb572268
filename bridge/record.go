package bridge

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/voxgate/voxgate/audio"
)

// ErrRecording is returned when a recording is already running.
var ErrRecording = errors.New("room is already recording")

// recorder writes a room's mix, and optionally each leg's track, to WAV.
type recorder struct {
	mix    *audio.WAVWriter
	path   string
	base   string
	rate   int
	perLeg bool
	legs   map[string]*audio.WAVWriter
	zero   []int16
	err    error
}

func (rec *recorder) write(mix []int16, members []*member, inputs [][]int16) {
	if rec.err != nil {
		return
	}
	if err := rec.mix.Write(mix); err != nil {
		rec.err = err
		return
	}
	if !rec.perLeg {
		return
	}
	for k, m := range members {
		w := rec.legs[m.id]
		if w == nil {
			var err error
			if w, err = audio.NewWAVWriter(rec.base+"-"+safeName(m.id)+".wav", rec.rate); err != nil {
				rec.err = err
				return
			}
			rec.legs[m.id] = w
		}
		in := inputs[k]
		if in == nil {
			in = rec.zero
		}
		if err := w.Write(in); err != nil {
			rec.err = err
			return
		}
	}
}

func (rec *recorder) close() error {
	err := rec.mix.Close()
	for _, w := range rec.legs {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = rec.err
	}
	return err
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ':' {
			return '_'
		}
		return r
	}, s)
}

// Record starts writing the room's mix to path (a .wav file); with perLeg,
// each leg's own audio also goes to path-without-.wav + "-<leg id>.wav".
func (r *Room) Record(path string, perLeg bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rec != nil {
		return ErrRecording
	}
	w, err := audio.NewWAVWriter(path, r.cfg.Rate)
	if err != nil {
		return fmt.Errorf("recording room %q: %w", r.cfg.Name, err)
	}
	r.wakeLocked()
	r.rec = &recorder{mix: w, path: path, base: strings.TrimSuffix(path, filepath.Ext(path)), rate: r.cfg.Rate,
		perLeg: perLeg, legs: map[string]*audio.WAVWriter{}, zero: make([]int16, r.cfg.Rate/50)}
	r.log.Info("recording started", "path", path, "per_leg", perLeg)
	return nil
}

// StopRecording finishes the files. Without a recording it does nothing.
func (r *Room) StopRecording() error {
	r.mu.Lock()
	rec := r.rec
	r.rec = nil
	r.mu.Unlock()
	if rec == nil {
		return nil
	}
	r.log.Info("recording stopped")
	return rec.close()
}

// Recording reports whether the room is recording.
func (r *Room) Recording() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec != nil
}
