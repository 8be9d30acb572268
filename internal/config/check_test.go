package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// checked has a field of every kind a voxgate config uses.
type checked struct {
	SIP struct {
		Domain   string        `yaml:"domain"`
		RTPPorts string        `yaml:"rtp_ports"`
		Codecs   []string      `yaml:"codecs"`
		NonceTTL time.Duration `yaml:"nonce_ttl"`
		Trunks   []struct {
			Name     string `yaml:"name"`
			Register *bool  `yaml:"register"`
			Expires  int    `yaml:"expires"`
		} `yaml:"trunks"`
	} `yaml:"sip"`
	Rooms struct {
		Rate  int     `yaml:"rate"`
		Tones *bool   `yaml:"tones"`
		Gain  float64 `yaml:"gain"`
		Port  uint16  `yaml:"port"`
		Small int8    `yaml:"small"`
	} `yaml:"rooms"`
	Origins struct {
		Trunks map[string]string `yaml:"trunks"`
	} `yaml:"origins"`
	Limits       map[string]int `yaml:"limits"`
	DrainTimeout time.Duration  `yaml:"drain_timeout"`
	Extra        struct {
		Inner `yaml:",inline"`
		Own   string `yaml:"own"`
	} `yaml:"extra"`
	Any      any  `yaml:"any"`
	Hidden   bool `yaml:"-"`
	Untagged string
}

type Inner struct {
	Shared string `yaml:"shared"`
}

// Each mistake is reported at its field and line in the config's own words:
// the golden messages are what a user reads.
func TestCheckMessages(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"typo in a section", "sip:\n  domain: a\n  domian: b\n", `c.yaml:3: sip.domian: unknown field (did you mean "domain"?)`},
		{"swapped letters", "drian_timeout: 5s\n", `c.yaml:1: drian_timeout: unknown field (did you mean "drain_timeout"?)`},
		{"wrong case", "sip:\n  Domain: a\n", `c.yaml:2: sip.Domain: unknown field (did you mean "domain"?)`},
		{"a key cut short", "drain: 5s\n", `c.yaml:1: drain: unknown field (did you mean "drain_timeout"?)`},
		{"nothing near", "rooms:\n  colour: red\n", "c.yaml:2: rooms.colour: unknown field (known fields: gain, port, rate, small, tones)"},
		{"top level", "sipp:\n  domain: a\n", `c.yaml:1: sipp: unknown field (did you mean "sip"?)`},
		{"in a list element", "sip:\n  trunks:\n    - name: c\n      expire: 60\n", `c.yaml:4: sip.trunks[0].expire: unknown field (did you mean "expires"?)`},
		{"a field kept out of the file", "hidden: true\n", "c.yaml:1: hidden: unknown field (known fields: any, drain_timeout, extra, limits, origins, rooms, sip, untagged)"},
		{"not a whole number", "rooms:\n  tones: true\n  rate: 16k\n", `c.yaml:3: rooms.rate: "16k" is not a whole number`},
		{"a fraction for a whole number", "rooms:\n  rate: 1.5\n", `c.yaml:2: rooms.rate: "1.5" is not a whole number`},
		{"a duration in words", "drain_timeout: 5 seconds\n", `c.yaml:1: drain_timeout: "5 seconds" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"a duration without a unit", "sip:\n  nonce_ttl: 300\n", `c.yaml:2: sip.nonce_ttl: "300" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"not a bool", "rooms:\n  tones: maybe\n", `c.yaml:2: rooms.tones: "maybe" is not true or false`},
		{"not a number", "rooms:\n  gain: loud\n", `c.yaml:2: rooms.gain: "loud" is not a number`},
		{"negative for unsigned", "rooms:\n  port: -1\n", `c.yaml:2: rooms.port: "-1" is out of range (0 to 65535)`},
		{"too big", "rooms:\n  small: 300\n", `c.yaml:2: rooms.small: "300" is out of range (-128 to 127)`},
		{"a scalar for a list", "sip:\n  codecs: opus\n", `c.yaml:2: sip.codecs: "opus" is not a list (write [a, b] or one "- item" per line)`},
		{"a list for a string", "sip:\n  domain: [a, b]\n", "c.yaml:2: sip.domain: a list is not a string"},
		{"a scalar for a section", "sip: yes\n", `c.yaml:1: sip: "yes" is not a mapping of fields (key: value)`},
		{"a list for a map", "origins:\n  trunks: [a]\n", "c.yaml:2: origins.trunks: a list is not a mapping (key: value)"},
		{"a map's value", "limits:\n  rooms: 5\n  calls: lots\n", `c.yaml:3: limits.calls: "lots" is not a whole number`},
		{"in a block list", "sip:\n  trunks:\n    - name: a\n    - name: b\n      register: sometimes\n", `c.yaml:5: sip.trunks[1].register: "sometimes" is not true or false`},
		{"a mapping in a list of strings", "sip:\n  codecs:\n    - opus\n    - {name: g722}\n", "c.yaml:4: sip.codecs[1]: a mapping is not a string"},
		{"set twice", "sip:\n  domain: a\n  domain: b\n", "c.yaml:3: sip.domain: set twice (first on line 2)"},
		{"through an alias", "defaults: &d {rate: fast}\nrooms: *d\n", "c.yaml:1: defaults: unknown field (known fields: any, drain_timeout, extra, limits, origins, rooms, sip, untagged)\n" +
			`c.yaml:1: rooms.rate: "fast" is not a whole number`}, // where the alias points
		{"a merged mapping", "rooms:\n  <<: {rate: fast}\n", `c.yaml:2: rooms.rate: "fast" is not a whole number`},
		{"merged into a map", "limits:\n  <<: {rooms: 5, calls: lots}\n", `c.yaml:2: limits.calls: "lots" is not a whole number`},
		{"a merge of a scalar", "rooms:\n  <<: fast\n", "c.yaml:2: rooms: << merges a mapping or a list of mappings"},
		{"an inlined struct's neighbour", "extra:\n  shared: a\n  owm: b\n", `c.yaml:3: extra.owm: unknown field (did you mean "own"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v checked
			_, err := Decode("c.yaml", []byte(c.src), &v)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if err.Error() != c.want {
				t.Fatalf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}

// Every mistake of a file is reported at once, in the order of the file,
// and a wrong section does not hide the mistakes after it.
func TestCheckReportsEveryMistake(t *testing.T) {
	src := "sip:\n  domian: a\n  codecs: opus\n  trunks:\n    - {name: a, expires: soon}\n    - {name: b, registr: x}\nrooms: loud\ndrain_timeout: 5 seconds\n"
	var v checked
	_, err := Decode("c.yaml", []byte(src), &v)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v, want Errors", err)
	}
	want := `c.yaml:2: sip.domian: unknown field (did you mean "domain"?)
c.yaml:3: sip.codecs: "opus" is not a list (write [a, b] or one "- item" per line)
c.yaml:5: sip.trunks[0].expires: "soon" is not a whole number
c.yaml:6: sip.trunks[1].registr: unknown field (did you mean "register"?)
c.yaml:7: rooms: "loud" is not a mapping of fields (key: value)
c.yaml:8: drain_timeout: "5 seconds" is not a duration (write e.g. 30s, 5m, 1h30m)`
	if err.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", err, want)
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 2 || first.Field != "sip.domian" {
		t.Fatalf("errors.As found %+v, want the first mistake", first)
	}
	// A file of nothing but mistakes gets the first maxErrors of them.
	var many strings.Builder
	for i := 0; i < 3*maxErrors; i++ {
		fmt.Fprintf(&many, "typo%d: x\n", i)
	}
	_, err = Decode("c.yaml", []byte(many.String()), &v)
	if !errors.As(err, &es) || len(es) != maxErrors || es[0].Line != 1 || es[maxErrors-1].Line != maxErrors {
		t.Fatalf("got %d mistakes: %v", len(es), err)
	}
}

// What yaml.v3 takes passes the check.
func TestCheckAccepts(t *testing.T) {
	src := `sip:
  domain: 42              # a number is a fine string
  codecs: [opus, g722]
  nonce_ttl: 1h30m
  trunks:
    - {name: c, register: no, expires: 60}
    - name: d
      register: ~
rooms:
  rate: 16000
  tones: true
  gain: 1.5
  port: 65535
  small: -128
origins:
  trunks:
    carrier.example: from-carrier
limits: {a: 1}
drain_timeout: 30s
extra: {shared: a, own: b}
any: [1, {a: b}]
untagged: x
`
	var v checked
	if _, err := Decode("c.yaml", []byte(src), &v); err != nil {
		t.Fatal(err)
	}
	if v.DrainTimeout != 30*time.Second || v.Extra.Shared != "a" || v.Untagged != "x" || v.Origins.Trunks["carrier.example"] != "from-carrier" {
		t.Fatalf("decoded %+v", v)
	}
	// A map takes merged entries.
	var m struct {
		Limits map[string]int `yaml:"limits"`
	}
	if _, err := Decode("c.yaml", []byte("d: &d {a: 1}\nlimits:\n  <<: [*d, {b: 2}]\n  c: 3\n"), &struct {
		D      map[string]int  `yaml:"d"`
		Limits *map[string]int `yaml:"limits"`
	}{Limits: &m.Limits}); err != nil || len(m.Limits) != 3 {
		t.Fatalf("%v: %v", err, m.Limits)
	}
	// Merged keys may be overridden by the mapping's own.
	if _, err := Decode("c.yaml", []byte("d: &d {rate: 8000}\nrooms:\n  <<: *d\n  rate: 16000\n"), &struct {
		D     map[string]int `yaml:"d"`
		Rooms struct {
			Rate int `yaml:"rate"`
		} `yaml:"rooms"`
	}{}); err != nil {
		t.Fatal(err)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"listen", "domain", "rtp_ports", "min_expires", "max_expires", "tls_cert", "tls_key"}
	cases := []struct{ in, want string }{
		{"domian", "domain"},
		{"listn", "listen"},
		{"DOMAIN", "domain"},
		{"rtp_port", "rtp_ports"},
		{"min_expire", "min_expires"},
		{"tls", ""}, // two keys start with it
		{"rtp", "rtp_ports"},
		{"x", ""},
		{"colour", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := Suggest(c.in, keys); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"domian", "domain", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}, {"ça", "ca", 1},
	}
	for _, c := range cases {
		if d := editDistance(c.a, c.b); d != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
	}
}

// Whatever the check lets through decodes; whatever it refuses, yaml.v3
// refuses too: the check never stands in the way of a valid file, and its
// answer is always a located *Error.
// fractionRefused reports the check's refusal of a number with a fraction
// for a whole-number field, which yaml.v3 would cut and take.
func fractionRefused(msg string) bool {
	q, ok := strings.CutSuffix(msg, " is not a whole number")
	if !ok {
		q, ok = strings.CutSuffix(msg, " is not a whole number (0 or more)")
	}
	v, err := strconv.Unquote(q)
	if !ok || err != nil {
		return false
	}
	var f float64
	return yaml.Unmarshal([]byte(v), &f) == nil && f != math.Trunc(f)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("sip:\n  domian: a\n"))
	f.Add([]byte("rooms: {rate: 16k, tones: yes}\n"))
	f.Add([]byte("d: &d {rate: 1}\nrooms:\n  <<: [*d]\n"))
	f.Add([]byte("sip:\n  trunks:\n    - {name: a, expires: 1e3}\n"))
	f.Add([]byte("limits: {? [a]: 1}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		var root yaml.Node
		if yaml.Unmarshal(src, &root) != nil {
			return
		}
		var v checked
		_, err := Decode("c.yaml", src, &v)
		var plain checked
		dec := yaml.Unmarshal(src, &plain)
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: got %v, want located *Errors", src, err)
			}
			es = Errors{e}
		}
		for _, e := range es {
			if e.File != "c.yaml" {
				t.Fatalf("%q: %v is not located", src, e)
			}
			// The check may refuse more than yaml.v3 does (unknown fields,
			// keys set twice); a value yaml.v3 took must not be refused.
			if dec == nil && e.Err != nil {
				msg := e.Err.Error()
				if !strings.Contains(msg, "unknown field") && !strings.Contains(msg, "set twice") && !fractionRefused(msg) {
					t.Fatalf("%q: yaml.v3 decodes it, the check says %v", src, err)
				}
			}
		}
	})
}
