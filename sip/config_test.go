package sip

import (
	"errors"
	"slices"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
)

// The codecs list takes any registered codec in any case and refuses
// others, naming what it knows.
func TestConfigCodecs(t *testing.T) {
	cases := []struct {
		name   string
		codecs []string
		want   []string // after Validate
		field  string   // of the error, "" for none
		msg    string
	}{
		{"default", nil, []string{"opus", "g722", "pcmu", "pcma"}, "", ""},
		{"any case", []string{"PCMA", "Opus", "g722"}, []string{"PCMA", "Opus", "g722"}, "", ""},
		{"unknown", []string{"pcmu", "g729"}, nil, "codecs[1]",
			`codecs[1]: unknown codec "g729" (want PCMU, PCMA, G722 or opus)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Codecs: c.codecs}
			err := cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(cfg.Codecs, c.want) {
					t.Fatalf("codecs %v, want %v", cfg.Codecs, c.want)
				}
				return
			}
			var fe *config.Error
			if !errors.As(err, &fe) || fe.Field != c.field || err.Error() != c.msg {
				t.Fatalf("got %v, want %s", err, c.msg)
			}
		})
	}
}
