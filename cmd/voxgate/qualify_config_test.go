package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/dialplan"
)

// The qualify settings read from the config file: per trunk (a duration,
// 0 for off, default 60s) and for contacts; bad values name file and line.
func TestQualifyConfigFile(t *testing.T) {
	const head = "sip:\n  qualify_contacts: 45s\n  qualify_misses: 3\n  trunks:\n"
	cfg, err := parseConfig("voxgate.yaml", []byte(head+
		"    - {name: a, registrar: 'sip:127.0.0.1:5070', qualify: 30s}\n"+
		"    - {name: b, registrar: 'sip:127.0.0.1:5071', qualify: 0s}\n"+
		"    - {name: c, registrar: 'sip:127.0.0.1:5072'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.SIP.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := cfg.SIP.Trunks
	if cfg.SIP.QualifyContacts != 45*time.Second || cfg.SIP.QualifyMisses != 3 ||
		*tr[0].Qualify != 30*time.Second || *tr[1].Qualify != 0 || *tr[2].Qualify != time.Minute {
		t.Fatalf("read %v %d %v %v %v", cfg.SIP.QualifyContacts, cfg.SIP.QualifyMisses, *tr[0].Qualify, *tr[1].Qualify, *tr[2].Qualify)
	}
	for _, c := range []struct{ yaml, want string }{
		{head + "    - {name: a, registrar: 'sip:127.0.0.1:5070', qualify: often}\n", "voxgate.yaml:5: sip.trunks[0].qualify"},
		{"sip:\n  qualify_contacts: -5s\n", "qualify_contacts"},
	} {
		cfg, err := parseConfig("voxgate.yaml", []byte(c.yaml))
		if err == nil {
			err = cfg.SIP.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
}

// voxgate route shows a dial's trunks in the order they are tried.
func TestRouteShowsFailover(t *testing.T) {
	plan, err := dialplan.Parse("plan.yaml", []byte(`
contexts:
  out:
    allow_trunks: true
    rules:
      - prefix: "00"
        dial: {trunks: [a, b], number: "+$1", try_timeout: 10}
origins: {user: out}
`), dialplan.Options{Trunks: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := plan.Route(dialplan.Call{Context: "out", Number: "0049", Caller: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeAction(a), "dial +49 through trunks a, then b in order (ring for 30s, each try 10s)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
