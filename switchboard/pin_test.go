package switchboard

import "testing"

func TestPINComplete(t *testing.T) {
	for _, c := range []struct {
		keyed string
		pins  []string
		want  bool
	}{
		{"1234", []string{"1234"}, true},
		{"123", []string{"1234"}, false},
		{"1234", []string{"1234", "12345"}, false}, // wait for # or the fifth digit
		{"12345", []string{"1234", "12345"}, true},
		{"9999", []string{"1111", "9999"}, true},
		{"9", []string{"1111", "9999"}, false},
	} {
		if got := complete(c.keyed, c.pins); got != c.want {
			t.Errorf("complete(%q, %q) = %v", c.keyed, c.pins, got)
		}
	}
}
