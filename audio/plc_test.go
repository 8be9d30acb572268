package audio

import (
	"math"
	"testing"
)

func snrDB(ref, got []int16) float64 {
	var s, n float64
	for i := range ref {
		d := float64(ref[i]) - float64(got[i])
		s += float64(ref[i]) * float64(ref[i])
		n += d * d
	}
	return 10 * math.Log10(s/(n+1e-9))
}

// A voiced (periodic) signal: one lost frame is rebuilt closely from the last
// pitch period, without a jump at either edge.
func TestPLCOneFrame(t *testing.T) {
	const rate = 8000
	sig := make([]int16, rate)
	tone := Tone{Rate: rate, Freq: 200, Level: 0.5}
	tone.Fill(sig)
	p := NewPLC(rate)
	out := make([]int16, 0, len(sig))
	lostAt := 20 // frame index
	for f := 0; f < 40; f++ {
		fr := append([]int16(nil), sig[f*160:(f+1)*160]...)
		if f == lostAt {
			p.Conceal(fr)
		} else {
			p.Good(fr)
		}
		out = append(out, fr...)
	}
	lost := out[lostAt*160 : (lostAt+1)*160]
	ref := sig[lostAt*160 : (lostAt+1)*160]
	if snr := snrDB(ref, lost); snr < 20 {
		t.Fatalf("concealed frame SNR %.1f dB, want >= 20 for a steady 200 Hz tone", snr)
	}
	// No click: the largest step across the concealed region stays near the
	// largest step of the tone itself.
	maxStep := 0.0
	for i := 1; i < len(sig); i++ {
		maxStep = max(maxStep, math.Abs(float64(sig[i])-float64(sig[i-1])))
	}
	for i := lostAt*160 - 5; i < (lostAt+1)*160+20; i++ {
		if d := math.Abs(float64(out[i]) - float64(out[i-1])); d > 1.5*maxStep {
			t.Fatalf("step of %.0f at sample %d (the tone's largest is %.0f)", d, i, maxStep)
		}
	}
}

// A long loss fades out and is silent after 60 ms.
func TestPLCLongLossFades(t *testing.T) {
	const rate = 8000
	p := NewPLC(rate)
	tone := Tone{Rate: rate, Freq: 150, Level: 0.5}
	fr := make([]int16, 160)
	for i := 0; i < 10; i++ {
		tone.Fill(fr)
		p.Good(fr)
	}
	var energies []float64
	for i := 0; i < 5; i++ { // 100 ms
		p.Conceal(fr)
		energies = append(energies, Energy(fr))
	}
	if energies[0] < 0.05 {
		t.Fatalf("first concealed frame nearly silent: %v", energies)
	}
	for i := 1; i < len(energies); i++ {
		if energies[i] > energies[i-1]*1.05 {
			t.Fatalf("concealment grows: %v", energies)
		}
	}
	if energies[3] != 0 || energies[4] != 0 {
		t.Fatalf("not silent after 60 ms: %v", energies)
	}
}

// Concealment with no history yields silence, not garbage.
func TestPLCNoHistory(t *testing.T) {
	p := NewPLC(16000)
	fr := make([]int16, 320)
	for i := range fr {
		fr[i] = 1234
	}
	p.Conceal(fr)
	if Energy(fr) != 0 {
		t.Fatal("concealment from nothing is not silent")
	}
}

func BenchmarkPLCConceal(b *testing.B) {
	p := NewPLC(8000)
	fr := make([]int16, 160)
	tone := Tone{Rate: 8000, Freq: 180, Level: 0.4}
	for i := 0; i < 10; i++ {
		tone.Fill(fr)
		p.Good(fr)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Conceal(fr)
		tone.Fill(fr)
		p.Good(fr)
	}
}
