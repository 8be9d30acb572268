package audio

import (
	"math/rand"
	"testing"
)

func TestDTMFEventRoundTrip(t *testing.T) {
	for _, ev := range []DTMFEvent{{Event: 1, Volume: 10, Duration: 160}, {Event: 11, End: true, Volume: 63, Duration: 1600}} {
		got, err := ParseDTMFEvent(ev.AppendTo(nil))
		if err != nil || got != ev {
			t.Fatalf("%+v -> %+v %v", ev, got, err)
		}
	}
	if _, err := ParseDTMFEvent([]byte{1, 2}); err == nil {
		t.Fatal("short payload accepted")
	}
	for _, d := range "0123456789*#ABCD" {
		e, ok := EventOf(d)
		if !ok || DigitOf(e) != d {
			t.Fatalf("%c -> %d -> %c", d, e, DigitOf(e))
		}
	}
	if e, ok := EventOf('b'); !ok || DigitOf(e) != 'B' {
		t.Fatal("lower-case b")
	}
	if _, ok := EventOf('x'); ok {
		t.Fatal("x accepted")
	}
}

// Generated in-band digits are detected once each, at 8 and 16 kHz and
// through G.711, with 60 ms tones and 60 ms gaps; noise and speech-like
// tones give nothing.
func TestDTMFDetectGenerated(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		frame := rate / 50
		var sig []int16
		digits := "1234567890*#ABCD5"
		for _, d := range digits {
			g, ok := NewDTMFTone(rate, d, 0.25)
			if !ok {
				t.Fatalf("no tone for %c", d)
			}
			tone := make([]int16, rate*60/1000)
			g.Fill(tone)
			sig = append(sig, tone...)
			sig = append(sig, make([]int16, rate*60/1000)...)
		}
		if rate == 8000 { // through G.711 like a desk phone's in-band digits
			sig = DecodeAlaw(nil, EncodeAlaw(nil, sig))
		}
		det := NewDTMFDetector(rate)
		var got []rune
		for off := 0; off+frame <= len(sig); off += frame {
			if d := det.Process(sig[off : off+frame]); d != 0 {
				got = append(got, d)
			}
		}
		if string(got) != digits {
			t.Fatalf("%d Hz: detected %q, want %q", rate, string(got), digits)
		}
	}
	rng := rand.New(rand.NewSource(1))
	det := NewDTMFDetector(8000)
	fr := make([]int16, 160)
	chord := []Tone{{Rate: 8000, Freq: 220, Level: 0.2}, {Rate: 8000, Freq: 440, Level: 0.2}, {Rate: 8000, Freq: 1100, Level: 0.1}}
	tmp := make([]int16, 160)
	for i := 0; i < 500; i++ {
		for j := range fr {
			fr[j] = int16(rng.NormFloat64() * 3000)
		}
		if i%2 == 0 { // a vowel-like chord
			clear(fr)
			for k := range chord {
				chord[k].Fill(tmp)
				for j := range fr {
					fr[j] += tmp[j]
				}
			}
		}
		if d := det.Process(fr); d != 0 {
			t.Fatalf("false digit %c", d)
		}
	}
}

func FuzzDTMFEvent(f *testing.F) {
	f.Add([]byte{1, 0x8a, 0x06, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseDTMFEvent(b)
		if err != nil {
			return
		}
		again, _ := ParseDTMFEvent(ev.AppendTo(nil))
		if again != ev {
			t.Fatalf("round trip %+v -> %+v", ev, again)
		}
	})
}
