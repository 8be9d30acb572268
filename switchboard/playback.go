package switchboard

import (
	"context"
	"log/slog"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
)

// playbackAction answers, plays a prompt to the caller, and hangs up.
func (s *Switchboard) playbackAction(ctx context.Context, c Leg, file string, log *slog.Logger) {
	if err := s.answer(ctx, c); err != nil {
		return
	}
	s.playback(ctx, c, file, log)
	if !isDone(c) {
		s.setCause(c, "system", 0, "prompt played")
	}
	c.Hangup(ctx)
}

// promptWAV loads a prompt, or makes the built-in one (a tone).
func promptWAV(file string, freq float64, seconds float64) (*audio.WAV, error) {
	if file != "" {
		return audio.ReadWAVFile(file)
	}
	w := &audio.WAV{Rate: 8000, Samples: make([]int16, int(8000*seconds))}
	(&audio.Tone{Rate: 8000, Freq: freq, Level: 0.2}).Fill(w.Samples)
	return w, nil
}

// soloRoom is a room of c's own, for prompts and keypad entry.
func (s *Switchboard) soloRoom(kind string, c Leg) (*bridge.Room, error) {
	solo, err := bridge.NewRoom(bridge.RoomConfig{Name: kind + "-" + c.ID(), Rate: 8000, Logger: s.log, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone})
	if err != nil {
		return nil, err
	}
	if err := solo.Join(c, bridge.JoinOptions{}); err != nil {
		solo.Close()
		return nil, err
	}
	return solo, nil
}

// playback plays a prompt to the call alone (in a room of its own).
func (s *Switchboard) playback(ctx context.Context, c Leg, file string, log *slog.Logger) {
	w, err := promptWAV(file, 440, 1)
	if err != nil {
		log.Error("prompt unreadable", "file", file, "error", err)
		return
	}
	solo, err := s.soloRoom("playback", c)
	if err != nil {
		return
	}
	defer solo.Close()
	_ = solo.PlayToLeg(c.ID(), w)
	t := time.NewTimer(time.Duration(len(w.Samples))*time.Second/time.Duration(w.Rate) + 300*time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
	case <-ctx.Done():
	}
}
