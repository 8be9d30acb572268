package audio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestComfortNoiseLevel(t *testing.T) {
	n := ComfortNoise{Level: -50}
	buf := make([]int16, 8000)
	n.Fill(buf)
	if l := LevelDBFS(buf); math.Abs(l-(-50)) > 1 {
		t.Fatalf("level %.1f dBFS, want -50", l)
	}
	Silence(buf)
	if Energy(buf) != 0 {
		t.Fatal("silence is not silent")
	}
}

func TestToneAndDetectors(t *testing.T) {
	buf := make([]int16, 8000)
	(&Tone{Rate: 8000, Freq: 1000, Level: 1}).Fill(buf)
	if p := Goertzel(buf, 8000, 1000); math.Abs(p-0.25) > 0.01 {
		t.Fatalf("Goertzel of a full-scale sine %.3f, want 0.25", p)
	}
	if s := ToneSeconds(buf, 8000, 1000, 0.2); s < 0.98 {
		t.Fatalf("ToneSeconds %.2f", s)
	}
	if s := ToneSeconds(buf, 8000, 1300, 0.2); s != 0 {
		t.Fatalf("ToneSeconds at the wrong frequency %.2f", s)
	}
}

func TestWAVRoundTripAndTruncated(t *testing.T) {
	pcm := make([]int16, 1600)
	(&Tone{Rate: 16000, Freq: 440, Level: 0.5}).Fill(pcm)
	path := filepath.Join(t.TempDir(), "a.wav")
	if err := WriteWAVFile(path, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	w, err := ReadWAVFile(path)
	if err != nil || w.Rate != 16000 || len(w.Samples) != len(pcm) {
		t.Fatalf("%v %+v", err, w)
	}
	// A writer killed before it wrote the sizes leaves zero lengths: the
	// samples are still read to the end of the file.
	b, _ := os.ReadFile(path)
	copy(b[40:44], []byte{0, 0, 0, 0})
	w, err = ReadWAV(bytes.NewReader(b))
	if err != nil || len(w.Samples) != len(pcm) {
		t.Fatalf("truncated header: %v, %d samples", err, len(w.Samples))
	}
	if _, err := ReadWAV(bytes.NewReader([]byte("RIFX0000WAVE"))); err == nil {
		t.Fatal("not a WAV accepted")
	}
}

func FuzzReadWAV(f *testing.F) {
	for _, p := range []string{"testdata/sine1k.wav", "testdata/sine1k-ulaw.wav"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 200)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ReadWAV(bytes.NewReader(b))
		if err == nil && w == nil {
			t.Fatal("nil WAV without an error")
		}
	})
}
