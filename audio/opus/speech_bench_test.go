package opus

import (
	"fmt"
	"testing"

	"github.com/voxgate/voxgate/audio"
)

// speechAt is the project's speech sample at rate, mono.
func speechAt(b *testing.B, rate int) []int16 {
	b.Helper()
	w, err := audio.ReadWAVFile("../../testdata/speech/speech16k.wav")
	if err != nil {
		b.Fatal(err)
	}
	if w.Rate == rate {
		return w.Samples
	}
	rs, err := audio.NewResampler(w.Rate, rate, w.Rate/50)
	if err != nil {
		b.Fatal(err)
	}
	var out []int16
	for i := 0; i+w.Rate/50 <= len(w.Samples); i += w.Rate / 50 {
		out = rs.Process(out, w.Samples[i:i+w.Rate/50])
	}
	return out
}

// BenchmarkOpusSpeech is a micro-benchmark: one 20 ms frame of speech
// encoded (the project's speech sample, looped) at the rate, complexity
// and FEC setting a room's encoder uses.
func BenchmarkOpusSpeech(b *testing.B) {
	for _, rate := range []int{8000, 16000, 48000} {
		pcm := speechAt(b, rate)
		frame := rate / 50
		for _, o := range []struct {
			name string
			opt  EncoderOptions
		}{
			{"c5", EncoderOptions{Complexity: 5}},
			{"c5-fec10", EncoderOptions{Complexity: 5, FEC: true, PacketLoss: 10}},
			{"c5-fec0", EncoderOptions{Complexity: 5, FEC: true, PacketLoss: 0}},
			{"c3", EncoderOptions{Complexity: 3}},
			{"c1", EncoderOptions{Complexity: 1}},
		} {
			b.Run(fmt.Sprintf("encode/%d/%s", rate, o.name), func(b *testing.B) {
				enc, err := NewEncoder(rate, o.opt)
				if err != nil {
					b.Fatal(err)
				}
				if o.opt.FEC && o.opt.PacketLoss == 0 {
					_ = enc.SetPacketLoss(0)
				}
				buf := make([]byte, 0, 1500)
				i := 0
				bytes := 0
				for b.Loop() {
					if i+frame > len(pcm) {
						i = 0
					}
					buf, _ = enc.Encode(buf[:0], pcm[i:i+frame])
					bytes += len(buf)
					i += frame
				}
				b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
			})
		}
	}
}
