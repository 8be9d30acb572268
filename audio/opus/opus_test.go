package opus

import (
	"fmt"
	"math"
	"testing"

	"github.com/voxgate/voxgate/audio"
)

// sineSNR is the power of a sine at freq over everything else, in dB.
func sineSNR(pcm []int16, rate int, freq float64) float64 {
	sig, res := audio.SineFit(pcm, rate, freq)
	return 10 * math.Log10(sig/res)
}

func encodeTone(t testing.TB, enc *Encoder, dec *Decoder, rate int, freq float64, frames int) []int16 {
	t.Helper()
	tone := audio.Tone{Rate: rate, Freq: freq, Level: 0.4}
	pcm := make([]int16, rate/50)
	pkt := make([]byte, 0, 1500)
	var out []int16
	for i := 0; i < frames; i++ {
		tone.Fill(pcm)
		var err error
		pkt, err = enc.Encode(pkt[:0], pcm)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = dec.Decode(out, pkt); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A sine comes through encoder and decoder at every rate, with the decoder
// at the same or another rate.
func TestOpusToneThrough(t *testing.T) {
	for _, rate := range []int{8000, 16000, 24000, 48000} {
		for _, outRate := range []int{8000, 48000} {
			t.Run(fmt.Sprintf("%d-%d", rate, outRate), func(t *testing.T) {
				enc, err := NewEncoder(rate, EncoderOptions{})
				if err != nil {
					t.Fatal(err)
				}
				dec, err := NewDecoder(outRate)
				if err != nil {
					t.Fatal(err)
				}
				out := encodeTone(t, enc, dec, rate, 700, 50)
				if len(out) != 50*outRate/50 {
					t.Fatalf("%d samples out", len(out))
				}
				snr := sineSNR(out[outRate/5:], outRate, 700) // skip the codec's start-up
				t.Logf("SNR of a 700 Hz sine: %.1f dB", snr)
				if snr < 20 {
					t.Fatalf("SNR %.1f dB, want >= 20", snr)
				}
			})
		}
	}
}

// A lost packet is concealed by libopus PLC (a continuation, not silence).
// DecodeFEC decodes the next packet's in-band FEC data for the lost frame;
// libopus 1.3.1 put no FEC (LBRR) data into packets of any synthetic signal
// we tried (harmonics, vibrato, added noise; 8-48 kHz, 12-32 kbit/s, also
// with a plain C program), so in that case DecodeFEC falls back to PLC. The
// test asserts the frame it returns and says which of the two happened.
func TestOpusConcealAndFEC(t *testing.T) {
	const rate = 16000
	enc, _ := NewEncoder(rate, EncoderOptions{FEC: true, PacketLoss: 20, Bitrate: 24000})
	// A voice-like harmonic series.
	tones := []audio.Tone{{Rate: rate, Freq: 150, Level: 0.2}, {Rate: rate, Freq: 300, Level: 0.15}, {Rate: rate, Freq: 450, Level: 0.1}}
	pcm := make([]int16, rate/50)
	tmp := make([]int16, rate/50)
	var pkts [][]byte
	for i := 0; i < 60; i++ {
		clear(pcm)
		for k := range tones {
			tones[k].Fill(tmp)
			for j := range pcm {
				pcm[j] += tmp[j]
			}
		}
		p, err := enc.Encode(nil, pcm)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	const lost = 40
	frames := map[string][]int16{}
	for _, mode := range []string{"none", "plc", "fec"} {
		dec, _ := NewDecoder(rate)
		var out []int16
		var err error
		for i, p := range pkts {
			switch {
			case i == lost && mode == "plc":
				out, err = dec.Conceal(out, dec.LastSamples())
			case i == lost && mode == "fec":
				out, err = dec.DecodeFEC(out, pkts[lost+1], dec.LastSamples())
			default:
				out, err = dec.Decode(out, p)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(out) != len(pkts)*rate/50 {
			t.Fatalf("%s: %d samples for %d packets", mode, len(out), len(pkts))
		}
		frames[mode] = out[lost*rate/50 : (lost+1)*rate/50]
	}
	snr := func(got []int16) float64 {
		var s, n float64
		for i, v := range frames["none"] {
			d := float64(v) - float64(got[i])
			s += float64(v) * float64(v)
			n += d * d
		}
		return 10 * math.Log10(s/(n+1))
	}
	plc, fec := snr(frames["plc"]), snr(frames["fec"])
	t.Logf("lost frame against the decoded original: PLC %.1f dB, FEC %.1f dB; PLC level %.1f dBFS", plc, fec, audio.LevelDBFS(frames["plc"]))
	if audio.LevelDBFS(frames["plc"]) < -30 {
		t.Fatalf("PLC gave near silence")
	}
	if len(frames["fec"]) != rate/50 || audio.LevelDBFS(frames["fec"]) < -30 {
		t.Fatalf("DecodeFEC returned no usable frame")
	}
	if fec > plc+3 {
		t.Logf("in-band FEC recovered the frame (%.1f dB better than PLC)", fec-plc)
	} else {
		t.Logf("no FEC data in the next packet: DecodeFEC fell back to PLC")
	}
}

// DTX: silence shrinks to tiny packets.
func TestOpusDTX(t *testing.T) {
	enc, _ := NewEncoder(48000, EncoderOptions{DTX: true})
	silence := make([]int16, 960)
	small := 0
	for i := 0; i < 50; i++ {
		p, err := enc.Encode(nil, silence)
		if err != nil {
			t.Fatal(err)
		}
		if i >= 20 && len(p) <= 3 { // DTX starts after about 200 ms of silence
			small++
		}
	}
	// In DTX the encoder still refreshes its comfort noise every 400 ms.
	if small < 25 {
		t.Fatalf("only %d of the last 30 silent packets were DTX-sized", small)
	}
}

func TestOpusOptionsRejected(t *testing.T) {
	for _, o := range []EncoderOptions{{Complexity: 11}, {Bitrate: 100}, {PacketLoss: 101}} {
		if _, err := NewEncoder(48000, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := NewEncoder(44100, EncoderOptions{}); err == nil {
		t.Error("44.1 kHz accepted")
	}
	if _, err := NewDecoder(11025); err == nil {
		t.Error("11.025 kHz decoder accepted")
	}
}

// The wrapper against libopus called directly (direct.go): same work, so the
// difference is the wrapper's overhead.
func BenchmarkOpus(b *testing.B) {
	for _, rate := range []int{48000, 16000, 8000} {
		pcm := make([]int16, rate/50)
		(&audio.Tone{Rate: rate, Freq: 440, Level: 0.3}).Fill(pcm)
		b.Run(fmt.Sprintf("encode/wrapper/%d", rate), func(b *testing.B) {
			enc, _ := NewEncoder(rate, EncoderOptions{Complexity: 5})
			buf := make([]byte, 0, 1500)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = enc.Encode(buf[:0], pcm)
			}
		})
		b.Run(fmt.Sprintf("encode/direct/%d", rate), func(b *testing.B) {
			c := newDirect(rate, 5)
			defer c.close()
			buf := make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				c.encode(pcm, buf)
			}
		})
		enc, _ := NewEncoder(rate, EncoderOptions{Complexity: 5})
		pkt, _ := enc.Encode(nil, pcm)
		b.Run(fmt.Sprintf("decode/wrapper/%d", rate), func(b *testing.B) {
			dec, _ := NewDecoder(rate)
			out := make([]int16, 0, maxFrame)
			b.ReportAllocs()
			for b.Loop() {
				out, _ = dec.Decode(out[:0], pkt)
			}
		})
		b.Run(fmt.Sprintf("decode/direct/%d", rate), func(b *testing.B) {
			c := newDirect(rate, 5)
			defer c.close()
			out := make([]int16, maxFrame)
			b.ReportAllocs()
			for b.Loop() {
				c.decode(pkt, out)
			}
		})
	}
}

// The registry's encoders take the complexity SetComplexity sets; it
// refuses what libopus would not take.
func TestSetComplexity(t *testing.T) {
	defer func() { _ = SetComplexity(DefaultComplexity) }()
	for _, bad := range []int{0, -1, 11} {
		if err := SetComplexity(bad); err == nil {
			t.Errorf("complexity %d accepted", bad)
		}
	}
	for _, c := range []int{2, 9} {
		if err := SetComplexity(c); err != nil {
			t.Fatal(err)
		}
		e, err := Info.NewEncoder(8000)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.(*Encoder).Complexity(); got != c {
			t.Errorf("the registry's encoder has complexity %d, want %d", got, c)
		}
	}
}
