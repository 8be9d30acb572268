package config

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const doc = `log:
  level: info
sip:
  listen:
    - transport: udp
      addr: 127.0.0.1:5060
    - {transport: tcp, addr: "127.0.0.1:5060"}
  trunks:
    - name: carrier
      inbound_cidrs: [10.0.0.0/8, nope]
users:
  - name: alice
    password: a
  - name: bob
origins:
  trunks:
    carrier.example: inbound
    carrier: other
defaults: &d
  rate: 8000
room: *d
`

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	return &root
}

func TestLine(t *testing.T) {
	root := parse(t, doc)
	cases := []struct {
		path string
		line int
	}{
		{"", 1},
		{"log", 1},
		{"log.level", 2},
		{"sip.listen", 4},
		{"sip.listen[0]", 5},
		{"sip.listen[0].addr", 6},
		{"sip.listen[1].addr", 7},
		{"sip.trunks[0].inbound_cidrs[1]", 10},
		{"users[1].name", 14},
		{"users[2].name", 11},                  // no third user: the list
		{"users[1].password", 14},              // missing field: its element
		{"sip.rtp_ports", 3},                   // missing field: its section
		{"nothing.at.all", 1},                  // missing section: the document
		{"log.level.deeper", 2},                // below a scalar: the scalar
		{"log[0]", 1},                          // an index into a mapping: the mapping
		{"sip.listen[x]", 4},                   // not an index
		{"origins.trunks.carrier.example", 17}, // a key with dots
		{"origins.trunks.carrier", 18},
		{"room.rate", 20}, // through an alias: where the value is written
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			if got := Line(root, c.path); got != c.line {
				t.Fatalf("Line(%q) = %d, want %d", c.path, got, c.line)
			}
		})
	}
	if Line(nil, "a") != 0 || Line(parse(t, ""), "a") != 0 {
		t.Fatal("an empty document has lines")
	}
}

func TestFieldAt(t *testing.T) {
	root := parse(t, doc)
	cases := []struct {
		line  int
		field string
	}{
		{1, "log"},
		{2, "log.level"},
		{5, "sip.listen[0].transport"},
		{7, "sip.listen[1].transport"}, // a flow mapping: its first key
		{10, "sip.trunks[0].inbound_cidrs"},
		{17, "origins.trunks.carrier.example"},
		{99, ""},
	}
	for _, c := range cases {
		if got := FieldAt(root, c.line); got != c.field {
			t.Errorf("FieldAt(%d) = %q, want %q", c.line, got, c.field)
		}
	}
}

type testConfig struct {
	Log struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
	Rooms []struct {
		Name string        `yaml:"name"`
		Max  int           `yaml:"max"`
		TTL  time.Duration `yaml:"ttl"`
	} `yaml:"rooms"`
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		field     string
		msg       string
	}{
		{"ok", "log:\n  level: info\n", 0, "", ""},
		{"empty", "", 0, "", ""},
		{"syntax", "log:\n  level: [\n", 2, "", "v.yaml:2: did not find expected node content"},
		{"unknown field", "log:\n  levle: info\n", 2, "log.levle", `v.yaml:2: log.levle: unknown field (did you mean "level"?)`},
		{"unknown field in a flow mapping", "rooms:\n  - {name: a, colour: red}\n", 2, "rooms[0].colour", "v.yaml:2: rooms[0].colour: unknown field (known fields: max, name, ttl)"},
		{"wrong type", "rooms:\n  - name: a\n    max: many\n", 3, "rooms[0].max", `v.yaml:3: rooms[0].max: "many" is not a whole number`},
		{"wrong type in a flow mapping", "rooms:\n  - {name: a, ttl: soon}\n", 2, "rooms[0].ttl", `v.yaml:2: rooms[0].ttl: "soon" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"a long wrong value", "rooms:\n  - {name: a, ttl: forever-and-ever}\n", 2, "rooms[0].ttl", `v.yaml:2: rooms[0].ttl: "forever-and-ever" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"a list for a number", "rooms:\n  - {name: a, max: [1]}\n", 2, "rooms[0].max", "v.yaml:2: rooms[0].max: a list is not a whole number"},
		{"not a document", "- a\n", 1, "", "v.yaml:1: a list is not a mapping of fields (key: value)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v testConfig
			_, err := Decode("v.yaml", []byte(c.src), &v)
			if c.line == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.File != "v.yaml" || e.Line != c.line || e.Field != c.field {
				t.Fatalf("got %q (line %d, field %q), want line %d, field %q", err, e.Line, e.Field, c.line, c.field)
			}
			if c.msg != "" && err.Error() != c.msg {
				t.Fatalf("got %q, want %q", err, c.msg)
			}
		})
	}
}

func FuzzLine(f *testing.F) {
	f.Add([]byte(doc), "sip.listen[1].addr", 7)
	f.Add([]byte("a: &x [1, {b: *x}]\n"), "a[1].b[0]", 1)
	f.Fuzz(func(t *testing.T, src []byte, path string, line int) {
		var root yaml.Node
		if yaml.Unmarshal(src, &root) != nil {
			return
		}
		if n := Line(&root, path); n < 0 {
			t.Fatalf("line %d", n)
		}
		_ = FieldAt(&root, line)
	})
}
