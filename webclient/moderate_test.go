package webclient

import (
	"errors"
	"strings"
	"testing"
)

// A moderate message needs its call, an action and, but for the room's
// own actions, the participant's leg (max needs the maximum); bad ones are
// refused with the field named.
func TestDecodeModerate(t *testing.T) {
	for _, c := range []struct {
		in, err string
	}{
		{`{"type":"moderate","id":"c1","action":"mute","leg":"bob/c2"}`, ""},
		{`{"type":"moderate","id":"c1","action":"lock"}`, ""},
		{`{"type":"moderate","id":"c1","action":"record"}`, ""},
		{`{"type":"moderate","id":"c1","action":"kick"}`, `missing field "leg" in "moderate"`},
		{`{"type":"moderate","id":"c1","action":"admit","leg":"sip-3"}`, ""},
		{`{"type":"moderate","id":"c1","action":"admit"}`, `missing field "leg" in "moderate"`},
		{`{"type":"moderate","id":"c1","action":"max","max":0}`, ""},
		{`{"type":"moderate","id":"c1","action":"max"}`, `missing field "max" in "moderate"`},
		{`{"type":"moderate","id":"c1","leg":"x"}`, `missing field "action" in "moderate"`},
		{`{"type":"moderate","action":"lock"}`, `missing field "action" in "moderate"`},
	} {
		m, err := DecodeMessage([]byte(c.in))
		if c.err == "" {
			if err != nil || m.Action == "" {
				t.Errorf("%s: %v", c.in, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.err)
		}
	}
}
