package audio

import (
	"fmt"
	"testing"
)

func TestSoftLimit(t *testing.T) {
	prev := SoftLimit(-1 << 24)
	for x := int32(-1 << 20); x <= 1<<20; x += 97 {
		y := SoftLimit(x)
		if y < prev {
			t.Fatalf("not monotonic at %d", x)
		}
		prev = y
	}
	for _, x := range []int32{0, 1000, -1000, limitKnee, -limitKnee} {
		if SoftLimit(x) != int16(x) {
			t.Errorf("SoftLimit(%d) = %d, want linear below the knee", x, SoftLimit(x))
		}
	}
	if SoftLimit(1<<30) > 32767 || SoftLimit(-1<<30) < -32767 {
		t.Error("limiter exceeds full scale")
	}
}

// mixFreq gives leg k its own frequency. The spacing grows quadratically so
// that no third-order intermodulation product of two or three tones
// (2fa-fb, fa+fb-fc), which the limiter creates, lands on another tone.
func mixFreq(k int) float64 { return 150 + 40*float64(k) + 3.7*float64(k*k) }

// Every leg hears every other tone and not its own, for N = 2, 3, 10, 50,
// with each tone loud enough that the sum clips.
func TestMixMinusNoSelf(t *testing.T) {
	const rate, frame = 48000, 960
	for _, n := range []int{2, 3, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			level := 0.7
			if n > 3 {
				level = 2.0 / float64(n) // the sum of n tones peaks near 2x full scale
			}
			tones := make([]Tone, n)
			ins := make([][]int16, n)
			outs := make([][]int16, n)
			rec := make([][]int16, n)
			for k := range tones {
				tones[k] = Tone{Rate: rate, Freq: mixFreq(k), Level: level}
				ins[k] = make([]int16, frame)
				outs[k] = make([]int16, frame)
			}
			m := NewMixMinus(frame)
			naive := make([][]int16, n) // clip first, subtract after: what mix-minus must not do
			clipped := 0
			for tick := 0; tick < 25; tick++ { // 0.5 s
				for k := range tones {
					tones[k].Fill(ins[k])
				}
				shared := m.Mix(ins, outs)
				for _, v := range shared {
					if v > limitKnee || v < -limitKnee {
						clipped++
					}
				}
				for k := range outs {
					rec[k] = append(rec[k], outs[k]...)
					for i := range shared {
						x := int32(max(-32768, min(32767, sumAt(ins, i)))) - int32(ins[k][i])
						naive[k] = append(naive[k], int16(max(-32768, min(32767, x))))
					}
				}
			}
			if clipped == 0 {
				t.Fatal("the sum never reached the limiter: the test does not test clipping")
			}
			for k := range rec {
				own := Goertzel(rec[k], rate, mixFreq(k))
				var weakest float64 = 1
				for j := range rec {
					if j == k {
						continue
					}
					weakest = min(weakest, Goertzel(rec[k], rate, mixFreq(j)))
				}
				// The limiter's intermodulation puts a little energy
				// everywhere; the own tone must stay 20 dB under the weakest
				// other, where clipping before subtracting leaks it far more.
				if weakest < 1e-4*level*level || own > weakest*1e-2 {
					t.Fatalf("leg %d: own tone %.2g, weakest other %.2g (want others present, own 20 dB below)", k, own, weakest)
				}
				if k == 0 && n <= 3 {
					leak := Goertzel(naive[k], rate, mixFreq(k))
					t.Logf("N=%d leg 0: own/weakest other %.1f dB; clip-then-subtract would give %.1f dB",
						n, 10*log10(own/weakest), 10*log10(leak/weakest))
					if leak < own*10 {
						t.Fatalf("negative control: clipping first leaks %.2g, not clearly worse than %.2g", leak, own)
					}
				}
			}
		})
	}
}

// A silent leg (nil input) hears the full mix.
func TestMixMinusSilentLegsShareTheMix(t *testing.T) {
	m := NewMixMinus(4)
	a := []int16{1, 2, 3, 4}
	b := []int16{10, 20, 30, 40}
	outs := [][]int16{make([]int16, 4), make([]int16, 4), nil}
	shared := m.Mix([][]int16{a, b, nil}, outs)
	for i := range a {
		if outs[0][i] != b[i] || outs[1][i] != a[i] || shared[i] != a[i]+b[i] {
			t.Fatalf("outs %v shared %v", outs, shared)
		}
	}
}

func benchMix(b *testing.B, n, talking int, level float64) {
	const frame = 960
	ins := make([][]int16, n)
	outs := make([][]int16, n)
	for k := range ins {
		outs[k] = make([]int16, frame)
		if k < talking {
			ins[k] = make([]int16, frame)
			(&Tone{Rate: 48000, Freq: mixFreq(k), Level: level}).Fill(ins[k])
		}
	}
	m := NewMixMinus(frame)
	b.ReportAllocs()
	for b.Loop() {
		m.Mix(ins, outs)
	}
}

// Every leg talking at speech level (the sum stays mostly under the limiter's
// knee), three talking, and the worst case where every output is limited.
func BenchmarkMixMinus48k(b *testing.B) {
	for _, c := range []struct {
		name       string
		n, talking int
		level      float64
	}{
		{"N=50/all-talking", 50, 50, 0.02},
		{"N=200/all-talking", 200, 200, 0.005},
		{"N=50/3-talking", 50, 3, 0.2},
		{"N=50/all-limited", 50, 50, 0.3},
	} {
		b.Run(c.name, func(b *testing.B) { benchMix(b, c.n, c.talking, c.level) })
	}
}

func sumAt(ins [][]int16, i int) int32 {
	var s int32
	for _, in := range ins {
		s += int32(in[i])
	}
	return s
}
