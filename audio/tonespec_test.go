package audio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseToneSpec(t *testing.T) {
	cases := []struct {
		in   string
		want []TonePart
		err  string // part of the error, "" for none
	}{
		{"440+480/2000,0/4000", []TonePart{{440, 480, 2000, false}, {0, 0, 4000, false}}, ""},
		{" 425/1000 , 0/4000 ", []TonePart{{425, 0, 1000, false}, {0, 0, 4000, false}}, ""},
		{"400+450/400,0/200,400+450/400,0/2000", []TonePart{{400, 450, 400, false}, {0, 0, 200, false}, {400, 450, 400, false}, {0, 0, 2000, false}}, ""},
		{"!950/330,!1400/330,!1800/330,0", []TonePart{{950, 0, 330, true}, {1400, 0, 330, true}, {1800, 0, 330, true}, {0, 0, 0, false}}, ""},
		{"425", []TonePart{{425, 0, 0, false}}, ""},
		{"", nil, "empty"},
		{"425/0", nil, "duration"},
		{"425/abc", nil, "duration"},
		{"425/60001", nil, "duration"},
		{"5000/100", nil, "frequency"},
		{"-1/100", nil, "frequency"},
		{"440+/100", nil, "frequency"},
		{"x", nil, "frequency"},
		{"440*30/100", nil, "modulated"},
		{"425,0/4000", nil, "for ever"},
		{strings.Repeat("425/10,", 40) + "0/10", nil, "parts"},
		{"425/40000,0/40000", nil, "together"},
	}
	for _, c := range cases {
		got, err := ParseToneSpec(c.in)
		if c.err != "" {
			if err == nil || !errors.Is(err, ErrToneSpec) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one about %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got.Parts, c.want) {
			t.Errorf("%q: %+v, want %+v", c.in, got.Parts, c.want)
		}
	}
}

// The rendered tone has its frequencies where the spec puts them, and
// silence in between; parts marked ! are in the intro only.
func TestToneSpecRender(t *testing.T) {
	spec, err := ParseToneSpec("!1000/200,440+480/2000,0/4000")
	if err != nil {
		t.Fatal(err)
	}
	intro, loop := spec.Render(8000, 0.3)
	if len(intro) != 8000*62/10 || len(loop) != 8000*6 {
		t.Fatalf("intro %d, loop %d samples", len(intro), len(loop))
	}
	on := loop[800:960] // within the 2 s of tone
	if Goertzel(on, 8000, 440) < 0.002 || Goertzel(on, 8000, 480) < 0.002 || Goertzel(on, 8000, 1000) > 0.0002 {
		t.Errorf("tone part: 440 %.4f 480 %.4f 1000 %.4f", Goertzel(on, 8000, 440), Goertzel(on, 8000, 480), Goertzel(on, 8000, 1000))
	}
	off := loop[8000*3 : 8000*3+160]
	if Goertzel(off, 8000, 440) > 0.0001 {
		t.Errorf("silence part carries 440 Hz: %.4f", Goertzel(off, 8000, 440))
	}
	if first := intro[:160]; Goertzel(first, 8000, 1000) < 0.01 {
		t.Errorf("intro lacks the 1000 Hz played once: %.4f", Goertzel(first, 8000, 1000))
	}
	if _, loop := (ToneSpec{Parts: []TonePart{{Freq1: 950, Ms: 300, Once: true}}}).Render(8000, 0.3); len(loop) != 0 {
		t.Errorf("a tone of parts played once has a loop of %d samples", len(loop))
	}
}

func FuzzParseToneSpec(f *testing.F) {
	for _, s := range []string{"440+480/2000,0/4000", "!950/330,0", "425", "", ",", "+/", "!!1/1", "440*30/5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseToneSpec(s)
		if err != nil {
			if !errors.Is(err, ErrToneSpec) {
				t.Fatalf("%q: error %v does not wrap ErrToneSpec", s, err)
			}
			return
		}
		again, err := ParseToneSpec(spec.String())
		if err != nil || !reflect.DeepEqual(again, spec) {
			t.Fatalf("%q: written back as %q, read as %+v, %v", s, spec.String(), again, err)
		}
		intro, loop := spec.Render(8000, 0.5)
		if len(intro) > 8000*61 || len(loop) > len(intro) {
			t.Fatalf("%q: intro %d, loop %d samples", s, len(intro), len(loop))
		}
	})
}
