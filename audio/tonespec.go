package audio

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrToneSpec is wrapped by every error of ParseToneSpec.
var ErrToneSpec = errors.New("bad tone")

// Bounds of a tone spec.
const (
	maxToneParts   = 32
	maxToneFreq    = 3999  // Hz: below the Nyquist frequency of 8 kHz audio
	maxTonePartMs  = 60000 // one part
	maxToneCycleMs = 60000 // the parts together
)

// TonePart is one step of a call-progress tone: one or two frequencies
// added (0 Hz: silence) for a duration.
type TonePart struct {
	Freq1, Freq2 float64 // Hz; Freq2 0 for a single frequency
	Ms           int     // duration; 0: for ever (the last part only)
	Once         bool    // played the first time through only
}

// ToneSpec is a call-progress tone (ringback, busy) in the syntax of
// Asterisk's indications.conf: parts separated by commas, each
// "[!]freq[+freq2][/ms]". "440+480/2000,0/4000" is 2 s of 440 Hz plus
// 480 Hz, then 4 s of silence, repeated; a part with ! is played once, not
// repeated; a part without /ms lasts for ever.
type ToneSpec struct {
	Parts []TonePart
}

// ParseToneSpec reads a tone spec. Its errors wrap ErrToneSpec and say
// which part is wrong.
func ParseToneSpec(s string) (ToneSpec, error) {
	var t ToneSpec
	s = strings.TrimSpace(s)
	if s == "" {
		return t, fmt.Errorf("%w: empty", ErrToneSpec)
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxToneParts {
		return t, fmt.Errorf("%w: %d parts (at most %d)", ErrToneSpec, len(parts), maxToneParts)
	}
	total := 0
	for i, raw := range parts {
		p, err := parseTonePart(strings.TrimSpace(raw))
		if err != nil {
			return ToneSpec{}, fmt.Errorf("%w: part %d %q: %v", ErrToneSpec, i+1, strings.TrimSpace(raw), err)
		}
		if p.Ms == 0 && i != len(parts)-1 {
			return ToneSpec{}, fmt.Errorf("%w: part %d %q lasts for ever (no /ms) but parts follow it", ErrToneSpec, i+1, strings.TrimSpace(raw))
		}
		total += p.Ms
		t.Parts = append(t.Parts, p)
	}
	if total > maxToneCycleMs {
		return ToneSpec{}, fmt.Errorf("%w: the parts last %d ms together (at most %d)", ErrToneSpec, total, maxToneCycleMs)
	}
	return t, nil
}

func parseTonePart(s string) (TonePart, error) {
	var p TonePart
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		p.Once, s = true, rest
	}
	if strings.Contains(s, "*") {
		return p, errors.New("modulated tones (f1*f2) are not supported; use f1+f2")
	}
	freqs, ms, timed := strings.Cut(s, "/")
	if timed {
		n, err := strconv.Atoi(strings.TrimSpace(ms))
		if err != nil || n < 1 || n > maxTonePartMs {
			return p, fmt.Errorf("duration %q is not 1 to %d ms", ms, maxTonePartMs)
		}
		p.Ms = n
	}
	f1, f2, two := strings.Cut(freqs, "+")
	var err error
	if p.Freq1, err = parseToneFreq(f1); err != nil {
		return p, err
	}
	if two {
		if p.Freq2, err = parseToneFreq(f2); err != nil {
			return p, err
		}
	}
	return p, nil
}

func parseToneFreq(s string) (float64, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxToneFreq {
		return 0, fmt.Errorf("frequency %q is not 0 to %d Hz", s, maxToneFreq)
	}
	return float64(n), nil
}

// foreverMs is how much of a part without a duration Render writes: the
// loop repeats it.
const foreverMs = 1000

// Render writes the tone as PCM at rate, each frequency at level (0..1 of
// full scale) split between the two of a dual tone: intro is played first,
// once (every part, those marked ! included), then loop is repeated (the
// parts not marked !). An empty loop means the tone ends after its intro.
func (t ToneSpec) Render(rate int, level float64) (intro, loop []int16) {
	for _, p := range t.Parts {
		intro = p.render(intro, rate, level)
		if !p.Once {
			loop = p.render(loop, rate, level)
		}
	}
	return intro, loop
}

func (p TonePart) render(dst []int16, rate int, level float64) []int16 {
	ms := p.Ms
	if ms == 0 {
		ms = foreverMs
	}
	n := rate * ms / 1000
	amp := level * 32767
	if p.Freq1 > 0 && p.Freq2 > 0 {
		amp /= 2
	}
	w1 := 2 * math.Pi * p.Freq1 / float64(rate)
	w2 := 2 * math.Pi * p.Freq2 / float64(rate)
	for i := 0; i < n; i++ {
		var v float64
		if p.Freq1 > 0 {
			v += math.Sin(w1 * float64(i))
		}
		if p.Freq2 > 0 {
			v += math.Sin(w2 * float64(i))
		}
		dst = append(dst, int16(amp*v))
	}
	return dst
}

// String writes the spec back in its syntax.
func (t ToneSpec) String() string {
	var b strings.Builder
	for i, p := range t.Parts {
		if i > 0 {
			b.WriteByte(',')
		}
		if p.Once {
			b.WriteByte('!')
		}
		b.WriteString(strconv.Itoa(int(p.Freq1)))
		if p.Freq2 > 0 {
			b.WriteString("+" + strconv.Itoa(int(p.Freq2)))
		}
		if p.Ms > 0 {
			b.WriteString("/" + strconv.Itoa(p.Ms))
		}
	}
	return b.String()
}
