package audio

import (
	"math/rand"
	"testing"
)

// Speech-like bursts over background noise: one start and one stop per
// burst, no flicker in the gaps between syllables, and the noise alone is
// never taken for talk.
func TestVADEventsWithHangover(t *testing.T) {
	const rate, frame = 8000, 160
	rng := rand.New(rand.NewSource(1))
	noise := func(dst []int16, amp float64) {
		for i := range dst {
			dst[i] = int16(rng.NormFloat64() * amp * 32767)
		}
	}
	v := NewVAD(VADConfig{})
	fr := make([]int16, frame)
	tone := Tone{Rate: rate, Freq: 300, Level: 0.3}
	var starts, stops int
	for f := 0; f < 600; f++ { // 12 s
		ms := f * 20
		// 2 s of noise, then bursts: 1 s of "speech" made of 200 ms
		// syllables with 100 ms gaps, then 1.5 s of noise.
		inBurst := ms >= 2000 && (ms-2000)%2500 < 1000
		syllable := inBurst && (ms-2000)%300 < 200
		noise(fr, 0.003) // about -50 dBFS of background
		if syllable {
			tone.Fill(fr)
		}
		_, changed := v.Update(fr)
		if changed {
			if v.Talking() {
				starts++
			} else {
				stops++
			}
		}
		if ms < 2000 && v.Talking() {
			t.Fatalf("noise taken for talk at %d ms", ms)
		}
	}
	if starts != 4 || stops != 4 {
		t.Fatalf("%d starts and %d stops, want 4 each (one per burst)", starts, stops)
	}
}

// A desk phone's G.711 is detected just like linear PCM.
func TestVADOnG711(t *testing.T) {
	v := NewVAD(VADConfig{})
	fr := make([]int16, 160)
	enc := make([]byte, 0, 160)
	tone := Tone{Rate: 8000, Freq: 440, Level: 0.2}
	for i := 0; i < 10; i++ {
		v.Update(make([]int16, 160))
	}
	for i := 0; i < 5; i++ {
		tone.Fill(fr)
		enc = EncodeUlaw(enc[:0], fr)
		v.Update(DecodeUlaw(fr[:0], enc))
	}
	if !v.Talking() {
		t.Fatalf("G.711 tone not detected (level %.1f dBFS)", v.Level())
	}
}

func BenchmarkVAD(b *testing.B) {
	v := NewVAD(VADConfig{})
	fr := make([]int16, 960)
	(&Tone{Rate: 48000, Freq: 300, Level: 0.2}).Fill(fr)
	b.ReportAllocs()
	for b.Loop() {
		v.Update(fr)
	}
}
