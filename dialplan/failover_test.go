package dialplan

import (
	"errors"
	"slices"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
)

func TestDialTrunksRoute(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`
contexts:
  out:
    allow_trunks: true
    rules:
      - prefix: "00"
        dial: {trunks: [b, a], number: "+$1", try_timeout: 5}
      - prefix: "0"
        dial: {trunk: a}
      - pattern: '[a-z]+'
        dial: {user: "$number"}
origins:
  user: out
`), Options{Trunks: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		number     string
		trunks     []string
		trunk, num string
		try        int
	}{
		{"004930", []string{"b", "a"}, "b", "+4930", 5},
		{"0123", []string{"a"}, "a", "0123", 0}, // trunk: alone is a list of one
		{"alice", nil, "", "alice", 0},
	}
	for _, c := range cases {
		t.Run(c.number, func(t *testing.T) {
			a, err := p.Route(Call{Context: "out", Number: c.number, Caller: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != Dial {
				t.Fatalf("kind %q", a.Kind)
			}
			d := a.Dial
			if !slices.Equal(d.Trunks, c.trunks) || d.Trunk != c.trunk || d.TryTimeout != c.try {
				t.Fatalf("trunks %q trunk %q try %d, want %q %q %d", d.Trunks, d.Trunk, d.TryTimeout, c.trunks, c.trunk, c.try)
			}
			if d.User == "" && d.Number != c.num {
				t.Fatalf("number %q, want %q", d.Number, c.num)
			}
		})
	}
	// Routing hands out a copy: changing it leaves the plan alone.
	a, _ := p.Route(Call{Context: "out", Number: "0049", Caller: "bob"})
	a.Dial.Trunks[0] = "x"
	if b, _ := p.Route(Call{Context: "out", Number: "0049", Caller: "bob"}); b.Dial.Trunks[0] != "b" {
		t.Fatalf("the plan changed: %q", b.Dial.Trunks)
	}
}

func TestDialTrunksErrors(t *testing.T) {
	const head = "contexts:\n  a:\n    allow_trunks: true\n    rules:\n      - prefix: '0'\n"
	cases := []struct {
		name, rule string
		field      string
		err        error
	}{
		{"unknown in list", "        dial: {trunks: [carrier, nowhere]}\n", "contexts.a.rules[0].dial.trunks[1]", ErrUnknownTrunk},
		{"listed twice", "        dial: {trunks: [carrier, other, carrier]}\n", "contexts.a.rules[0].dial.trunks[2]", nil},
		{"empty name", "        dial: {trunks: [carrier, '']}\n", "contexts.a.rules[0].dial.trunks[1]", nil},
		{"trunk and trunks", "        dial: {trunk: carrier, trunks: [other]}\n", "contexts.a.rules[0].dial", nil},
		{"user and trunks", "        dial: {user: bob, trunks: [other]}\n", "contexts.a.rules[0].dial", nil},
		{"nothing", "        dial: {number: '1'}\n", "contexts.a.rules[0].dial", nil},
		{"negative try", "        dial: {trunks: [carrier], try_timeout: -1}\n", "contexts.a.rules[0].dial", nil},
		{"try for a user", "        dial: {user: bob, try_timeout: 3}\n", "contexts.a.rules[0].dial.try_timeout", nil},
		{"not a list", "        dial: {trunks: carrier}\n", "contexts.a.rules[0].dial.trunks", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("plan.yaml", []byte(head+c.rule), Options{Trunks: []string{"carrier", "other"}})
			var e *config.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v", err)
			}
			if e.File != "plan.yaml" || e.Field != c.field || (c.err != nil && !errors.Is(err, c.err)) {
				t.Fatalf("got %q (field %q), want field %q", err, e.Field, c.field)
			}
			t.Log(err)
		})
	}
	// A context without allow_trunks may not list trunks either.
	_, err := Parse("plan.yaml", []byte("contexts:\n  a:\n    rules:\n      - prefix: '0'\n        dial: {trunks: [carrier]}\n"), Options{Trunks: []string{"carrier"}})
	if !errors.Is(err, ErrTollFraud) {
		t.Fatalf("got %v, want toll fraud", err)
	}
}
