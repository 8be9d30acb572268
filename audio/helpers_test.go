package audio

import (
	"math"
	"os"
	"testing"
)

func log10(x float64) float64 { return math.Log10(x) }

// readRawG711 returns the data chunk of an 8-bit G.711 WAV without decoding.
func readRawG711(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 12; i+8 <= len(b); {
		id := string(b[i : i+4])
		n := int(b[i+4]) | int(b[i+5])<<8 | int(b[i+6])<<16 | int(b[i+7])<<24
		if id == "data" {
			return b[i+8 : i+8+n]
		}
		i += 8 + n + n%2
	}
	t.Fatalf("%s: no data chunk", path)
	return nil
}
