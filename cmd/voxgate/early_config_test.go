package main

import "testing"

// Mistakes in a trunk's caller-ID rules and in the ringback settings are
// reported with the file, the line and the field.
func TestEarlyAndCallerIDConfigErrors(t *testing.T) {
	trunk := "sip:\n  trunks:\n    - name: c\n      registrar: \"sip:192.0.2.1\"\n      register: false\n      caller_id:\n"
	cases := []struct{ name, yaml, want string }{
		{"country code", trunk + "        country_code: \"049\"\n",
			`config.yaml:7: sip.trunks[0].caller_id.country_code: "049" is not a country calling code (1 to 3 digits, e.g. 49)`},
		{"format", trunk + "        format: e164\n", `config.yaml:7: sip.trunks[0].caller_id.format: e164 needs country_code`},
		{"number", trunk + "        number: bob\n", `config.yaml:7: sip.trunks[0].caller_id.number: "bob" is not a phone number (digits, an optional leading +)`},
		{"unknown field", trunk + "        pia: true\n", `config.yaml:7: sip.trunks[0].caller_id.pia: unknown field (did you mean "pai"?)`},
		{"ringback mode", "ringback:\n  phones: always\n", `config.yaml:2: ringback.phones: unknown mode "always" (want ringing or generate)`},
		{"ringback tone", "ringback:\n  tone: \"425/1000,0/x\"\n", `config.yaml:2: ringback.tone: bad tone: part 2 "0/x": duration "x" is not 1 to 60000 ms`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig("config.yaml", []byte(c.yaml))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
	cfg, err := parseConfig("config.yaml", []byte(trunk+"        country_code: \"49\"\n        pai: true\nringback:\n  pages: off\n  country: uk\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cid := cfg.SIP.Trunks[0].CallerID; cid.Format != "e164" || !cid.PAI || cfg.Ringback.Pages != "off" || cfg.Ringback.Phones != "ringing" {
		t.Fatalf("read %+v and %+v", cid, cfg.Ringback)
	}
}
