package config

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	reason := errors.New("is required")
	cases := []struct {
		name string
		err  *Error
		want string
	}{
		{"everything", &Error{File: "voxgate.yaml", Line: 12, Field: "sip.trunks[0].registrar", Err: reason}, "voxgate.yaml:12: sip.trunks[0].registrar: is required"},
		{"no line", &Error{File: "voxgate.yaml", Field: "sip.advertise", Err: reason}, "voxgate.yaml: sip.advertise: is required"},
		{"no field", &Error{File: "voxgate.yaml", Line: 2, Err: reason}, "voxgate.yaml:2: is required"},
		{"not located", &Error{Field: "rtp_ports", Err: reason}, "rtp_ports: is required"},
		{"line without a file", &Error{Line: 3, Field: "a", Err: reason}, "line 3: a: is required"},
		{"only the reason", &Error{Err: reason}, "is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.err.Error(); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	cases := []struct {
		name   string
		prefix string
		err    error
		field  string
	}{
		{"section", "sip", FieldErr("rtp_ports", fs.ErrInvalid), "sip.rtp_ports"},
		{"list element", "trunks[2]", FieldErr("name", fs.ErrInvalid), "trunks[2].name"},
		{"nested twice", "sip", Within("trunks[2]", FieldErr("inbound_cidrs[1]", fs.ErrInvalid)), "sip.trunks[2].inbound_cidrs[1]"},
		{"index below a list", "users", FieldErr("[1].name", fs.ErrInvalid), "users[1].name"},
		{"the element itself", "contexts.a.rules[0]", FieldErr("", fs.ErrInvalid), "contexts.a.rules[0]"},
		{"a plain error", "web", fs.ErrInvalid, "web"},
		{"a wrapped field error", "sip", fmt.Errorf("starting: %w", FieldErr("listen[0].addr", fs.ErrInvalid)), "sip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Within(c.prefix, c.err)
			var e *Error
			if !errors.As(err, &e) || e.Field != c.field {
				t.Fatalf("got %v, want field %q", err, c.field)
			}
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("%v lost its reason", err)
			}
		})
	}
	if Within("sip", nil) != nil {
		t.Fatal("no error became one")
	}
}

func TestLocate(t *testing.T) {
	root, err := Decode("v.yaml", []byte("sip:\n  listen:\n    - addr: x\n"), &struct {
		SIP struct {
			Listen []struct {
				Addr string `yaml:"addr"`
			} `yaml:"listen"`
		} `yaml:"sip"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	located := Locate("v.yaml", root, Within("sip", Fieldf("listen[0].addr", "%q is not host:port", "x")))
	var e *Error
	if !errors.As(located, &e) || e.File != "v.yaml" || e.Line != 3 {
		t.Fatalf("got %v", located)
	}
	if want := `v.yaml:3: sip.listen[0].addr: "x" is not host:port`; located.Error() != want {
		t.Fatalf("got %q, want %q", located, want)
	}
	// A line already known (a dialplan rule's) and a file already named stay.
	kept := Locate("w.yaml", root, &Error{File: "v.yaml", Line: 1, Field: "sip.listen[0].addr", Err: fs.ErrInvalid})
	if kept.Error() != "v.yaml:1: sip.listen[0].addr: invalid argument" {
		t.Fatalf("got %q", kept)
	}
	if plain := errors.New("x"); Locate("v.yaml", root, plain) != plain {
		t.Fatal("an error without a field was changed")
	}
	if Locate("v.yaml", nil, FieldErr("a", fs.ErrInvalid)).Error() != "v.yaml: a: invalid argument" {
		t.Fatal("locating without a document")
	}
}
