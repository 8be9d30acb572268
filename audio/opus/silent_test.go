package opus

import (
	"path/filepath"
	"testing"

	"github.com/voxgate/voxgate/audio"
)

// Silent tells voice from its absence in the packet itself: silence and
// DTX from an encoder are silent, speech mostly is not, and pauses in
// speech are found silent too.
func TestSilentFromPacket(t *testing.T) {
	w, err := audio.ReadWAVFile(filepath.Join("..", "..", "testdata", "speech", "speech16k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		rate int
		o    EncoderOptions
	}{
		{"16k", 16000, EncoderOptions{}},
		{"16k-dtx", 16000, EncoderOptions{DTX: true}},
		{"48k-fec", 48000, EncoderOptions{FEC: true}},
		{"8k", 8000, EncoderOptions{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := NewEncoder(c.rate, c.o)
			if err != nil {
				t.Fatal(err)
			}
			rs, _ := audio.NewResampler(16000, c.rate, 320)
			frame := c.rate / 50
			var loudSilent, loud, quietSilent, quiet int
			pcm := make([]int16, 0, frame)
			for off := 0; off+320 <= len(w.Samples); off += 320 {
				in := w.Samples[off : off+320]
				pcm = rs.Process(pcm[:0], in)
				p, err := enc.Encode(nil, pcm[:frame])
				if err != nil {
					t.Fatal(err)
				}
				lvl := audio.LevelDBFS(in)
				switch {
				case lvl > -30:
					loud++
					if Silent(p) {
						loudSilent++
					}
				case lvl < -60:
					quiet++
					if Silent(p) {
						quietSilent++
					}
				}
			}
			t.Logf("speech frames (> -30 dBFS) called silent: %d of %d; pauses (< -60 dBFS) called silent: %d of %d", loudSilent, loud, quietSilent, quiet)
			if loudSilent*50 > loud {
				t.Errorf("%d of %d speech frames called silent", loudSilent, loud)
			}
			// With DTX (what voxgate asks peers for) pauses are silent;
			// without, only the smallest inactive frames are taken.
			if c.o.DTX && quietSilent*10 < quiet*4 { // DTX starts some 200 ms into a pause
				t.Errorf("only %d of %d pauses called silent", quietSilent, quiet)
			}
		})
	}
}
