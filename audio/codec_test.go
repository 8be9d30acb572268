package audio_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus" // importing it registers Opus, so its entry is tested too
)

func TestLookupCodec(t *testing.T) {
	cases := []struct {
		name     string
		ok       bool
		canon    string
		pt       uint8
		rate     int
		channels int
		pcm      int
	}{
		{"PCMU", true, "PCMU", 0, 8000, 1, 8000},
		{"pcmu", true, "PCMU", 0, 8000, 1, 8000},
		{"PcmA", true, "PCMA", 8, 8000, 1, 8000},
		{"g722", true, "G722", 9, 8000, 1, 16000},
		{"OPUS", true, "opus", 111, 48000, 2, 48000},
		{"opus", true, "opus", 111, 48000, 2, 48000},
		{"G729", false, "", 0, 0, 0, 0},
		{"", false, "", 0, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, ok := audio.LookupCodec(c.name)
			if ok != c.ok {
				t.Fatalf("found %v, want %v", ok, c.ok)
			}
			if info.Name != c.canon || info.PayloadType != c.pt || info.Rate != c.rate || info.Channels != c.channels || info.PCMRate != c.pcm {
				t.Fatalf("got %s pt %d rate %d/%d pcm %d", info.Name, info.PayloadType, info.Rate, info.Channels, info.PCMRate)
			}
			if ok && info.Codec() != (audio.Codec{Name: c.canon, Rate: c.rate}) {
				t.Fatalf("Codec() = %+v", info.Codec())
			}
		})
	}
}

func TestCodecsListsEveryCodec(t *testing.T) {
	var names []string
	for _, c := range audio.Codecs() {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "PCMU PCMA G722 opus" {
		t.Fatalf("Codecs() = %s", got)
	}
	if got := audio.CodecNames(); got != "PCMU, PCMA, G722 or opus" {
		t.Fatalf("CodecNames() = %q", got)
	}
}

func TestRegisterCodecRejects(t *testing.T) {
	pcmu, _ := audio.LookupCodec("pcmu")
	for name, info := range map[string]audio.CodecInfo{
		"duplicate":  pcmu,
		"other case": func() audio.CodecInfo { c := pcmu; c.Name = "pcmu"; return c }(),
		"incomplete": {Name: "L16", Rate: 8000},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			audio.RegisterCodec(info)
		})
	}
}

// roundTrip encodes frames of pcm with c's encoder and decodes them again,
// both asked for rate; it returns the payloads and the decoded PCM.
func roundTrip(t *testing.T, c audio.CodecInfo, rate int, frame func([]int16)) ([][]byte, []int16, int) {
	t.Helper()
	enc, err := c.NewEncoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.NewDecoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Rate() != dec.Rate() {
		t.Fatalf("encoder at %d, decoder at %d", enc.Rate(), dec.Rate())
	}
	if enc.String() == "" || dec.String() == "" {
		t.Fatal("a stage without a name")
	}
	pcm := make([]int16, enc.Rate()/50)
	var payloads [][]byte
	var out []int16
	for range 50 { // one second
		frame(pcm)
		p, err := enc.Encode(nil, pcm)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
		if out, err = dec.Decode(out, p); err != nil {
			t.Fatal(err)
		}
	}
	return payloads, out, dec.Rate()
}

// minSNR is what each codec must keep of a 1 kHz tone: a waveform codec
// nearly all of it, Opus (SILK shapes its noise to the ear, not to a sine,
// at 8 and 16 kHz) less. A codec registered later must be added here.
var minSNR = map[string]float64{"PCMU": 40, "PCMA": 40, "G722": 40, "opus": 10}

// Every registered codec carries a 1 kHz tone through its encoder and
// decoder, at its own rate and at every mixing rate it is asked for.
func TestCodecToneRoundTrip(t *testing.T) {
	for _, c := range audio.Codecs() {
		for _, rate := range audio.MixRates() {
			t.Run(c.Name+"/"+strconv.Itoa(rate), func(t *testing.T) {
				want, ok := minSNR[c.Name]
				if !ok {
					t.Fatalf("no minimum SNR for %s", c.Name)
				}
				var tone *audio.Tone
				_, out, got := roundTrip(t, c, rate, func(pcm []int16) {
					if tone == nil {
						tone = &audio.Tone{Rate: len(pcm) * 50, Freq: 1000, Level: 0.3}
					}
					tone.Fill(pcm)
				})
				if got != rate && got != c.PCMRate {
					t.Fatalf("decoder at %d, want %d or %d", got, rate, c.PCMRate)
				}
				if len(out) != got {
					t.Fatalf("%d samples for a second at %d", len(out), got)
				}
				sig, res := audio.SineFit(out[got/10:], got, 1000) // past the codec's start-up
				snr := 10 * math.Log10(sig/res)
				t.Logf("SNR %.1f dB", snr)
				if snr < want {
					t.Fatalf("SNR %.1f dB, want >= %.0f", snr, want)
				}
			})
		}
	}
}

// The Silent hint calls silence silent and a tone not. Opus's hint knows
// DTX and near-silent frames: what the registry's encoder (FEC on, no DTX)
// makes of silence at 8 kHz, or any encoder with DTX, not its 36-byte
// silence at 48 kHz.
func TestCodecSilentHint(t *testing.T) {
	withDTX := func(rate int) (audio.Encoder, error) { return opus.NewEncoder(rate, opus.EncoderOptions{DTX: true}) }
	cases := []struct {
		codec string
		rate  int
		enc   func(rate int) (audio.Encoder, error) // nil: the registry's
	}{
		{"PCMU", 8000, nil},
		{"PCMA", 8000, nil},
		{"opus", 8000, nil},
		{"opus", 48000, withDTX},
	}
	for _, tc := range cases {
		t.Run(tc.codec+"/"+strconv.Itoa(tc.rate), func(t *testing.T) {
			c, _ := audio.LookupCodec(tc.codec)
			if c.Silent == nil {
				t.Fatal("no Silent hint")
			}
			newEnc := tc.enc
			if newEnc == nil {
				newEnc = func(rate int) (audio.Encoder, error) { return c.NewEncoder(rate) }
			}
			// One stream of silence, one of a tone, each with its own encoder.
			for _, level := range []float64{0, 0.3} {
				enc, err := newEnc(tc.rate)
				if err != nil {
					t.Fatal(err)
				}
				pcm := make([]int16, enc.Rate()/50)
				tone := audio.Tone{Rate: enc.Rate(), Freq: 1000, Level: level}
				silent := 0
				for i := range 50 {
					tone.Fill(pcm)
					p, err := enc.Encode(nil, pcm)
					if err != nil {
						t.Fatal(err)
					}
					if i >= 10 && c.Silent(p) { // past the encoder's start-up
						silent++
					}
				}
				// DTX refreshes its comfort noise now and then with a
				// larger frame, so nine in ten is enough.
				if (level == 0 && silent < 36) || (level > 0 && silent > 0) {
					t.Fatalf("%d of 40 frames at level %.1f called silent", silent, level)
				}
			}
		})
	}
	if g722, _ := audio.LookupCodec("G722"); g722.Silent != nil {
		t.Error("G.722 has a Silent hint this test does not check")
	}
}

// A waveform codec's decoder conceals a loss with a continuation of the
// tone, not silence; every decoder conceals the size it is asked for.
func TestCodecConceal(t *testing.T) {
	for _, c := range audio.Codecs() {
		t.Run(c.Name, func(t *testing.T) {
			tone := audio.Tone{Rate: c.PCMRate, Freq: 1000, Level: 0.3}
			dec, err := c.NewDecoder(c.PCMRate)
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := c.NewEncoder(c.PCMRate)
			pcm := make([]int16, c.PCMRate/50)
			var out []int16
			for range 10 {
				tone.Fill(pcm)
				p, _ := enc.Encode(nil, pcm)
				out, _ = dec.Decode(out[:0], p)
			}
			n := len(out)
			out, err = dec.Conceal(out, len(pcm))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != n+len(pcm) {
				t.Fatalf("concealed %d samples, want %d", len(out)-n, len(pcm))
			}
			if db := audio.LevelDBFS(out[n:]); db < -30 {
				t.Fatalf("concealment of a tone is silent (%.1f dBFS)", db)
			}
		})
	}
}

func TestMixRates(t *testing.T) {
	for _, r := range []int{8000, 16000, 24000, 48000} {
		if !audio.ValidMixRate(r) || audio.CheckMixRate(r) != nil {
			t.Errorf("%d refused", r)
		}
	}
	for _, r := range []int{0, -8000, 11025, 32000, 44100, 96000} {
		err := audio.CheckMixRate(r)
		if audio.ValidMixRate(r) || !errors.Is(err, audio.ErrRate) {
			t.Errorf("%d: %v", r, err)
		}
	}
	want := "12000 is not a mixing rate (want 8000, 16000, 24000 or 48000)"
	if err := audio.CheckMixRate(12000); err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	rates := audio.MixRates()
	rates[0] = 1 // a copy: the list cannot be changed from outside
	if !audio.ValidMixRate(8000) || audio.ValidMixRate(1) {
		t.Error("MixRates returned the package's own slice")
	}
}
