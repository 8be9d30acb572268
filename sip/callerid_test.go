package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
)

func callerIDRules(t testing.TB, c CallerIDConfig) CallerIDConfig {
	t.Helper()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Numbers in the forms people and carriers write them become E.164; what
// cannot be read as a number stays as it is.
func TestCallerIDE164(t *testing.T) {
	de := callerIDRules(t, CallerIDConfig{CountryCode: "49"})
	none := callerIDRules(t, CallerIDConfig{})
	uk := callerIDRules(t, CallerIDConfig{CountryCode: "44", InternationalPrefix: "00"})
	us := callerIDRules(t, CallerIDConfig{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011"})
	cases := []struct {
		rules  CallerIDConfig
		in     string
		want   string
		number bool
	}{
		{de, "0301234567", "+49301234567", true},
		{de, "030 123-45.67", "+49301234567", true},
		{de, "(030) 1234567", "+49301234567", true},
		{de, "+49301234567", "+49301234567", true},
		{de, "+49 30 1234567", "+49301234567", true},
		{de, "0041441234567", "+41441234567", true},
		{de, "301234567", "301234567", false}, // no prefix: cannot tell
		{de, "alice", "alice", false},
		{de, "", "", false},
		{de, "+", "+", false},
		{de, "+0301", "+0301", false},
		{de, "000", "000", false},
		{de, "0", "0", false},
		{de, "00", "00", false},
		{de, "+49abc", "+49abc", false},
		{none, "0301234567", "0301234567", false}, // no country code: no national numbers
		{none, "0041441234567", "+41441234567", true},
		{uk, "02071234567", "+442071234567", true},
		{us, "12125551234", "+12125551234", true},
		{us, "01133123456789", "+33123456789", true},
	}
	for _, c := range cases {
		got, ok := c.rules.e164(c.in)
		if got != c.want || ok != c.number {
			t.Errorf("country %q: e164(%q) = %q, %v; want %q, %v", c.rules.CountryCode, c.in, got, ok, c.want, c.number)
		}
	}
}

// The identity of a call out: the format, a fixed number, a withheld
// caller ID, P-Asserted-Identity.
func TestCallerIDOutbound(t *testing.T) {
	cases := []struct {
		name     string
		rules    CallerIDConfig
		callerID string
		want     outboundID
	}{
		{"as is", CallerIDConfig{}, "0301234567", outboundID{From: "0301234567"}},
		{"trunk username", CallerIDConfig{}, "", outboundID{From: "trunkuser"}},
		{"e164", CallerIDConfig{CountryCode: "49"}, "0301234567", outboundID{From: "+49301234567"}},
		{"digits", CallerIDConfig{CountryCode: "49", Format: "digits"}, "0301234567", outboundID{From: "49301234567"}},
		{"national", CallerIDConfig{CountryCode: "49", Format: "national"}, "+49301234567", outboundID{From: "0301234567"}},
		{"national, foreign", CallerIDConfig{CountryCode: "49", Format: "national"}, "+41441234567", outboundID{From: "0041441234567"}},
		{"not a number", CallerIDConfig{CountryCode: "49"}, "alice", outboundID{From: "alice"}},
		{"fixed", CallerIDConfig{CountryCode: "49", Number: "030 999"}, "0301234567", outboundID{From: "+4930999"}},
		{"fixed, pai", CallerIDConfig{CountryCode: "49", Number: "+4930999", PAI: true}, "", outboundID{From: "+4930999", Asserted: "+4930999"}},
		{"pai", CallerIDConfig{CountryCode: "49", PAI: true}, "0301234567", outboundID{From: "+49301234567", Asserted: "+49301234567"}},
		{"withheld", CallerIDConfig{}, "anonymous", outboundID{From: "anonymous", Display: "Anonymous", Withheld: true}},
		{"withheld, pai", CallerIDConfig{CountryCode: "49", Number: "0301234567", PAI: true}, "Withheld",
			outboundID{From: "anonymous", Display: "Anonymous", Withheld: true, Asserted: "+49301234567"}},
		{"withheld, pai of the username", CallerIDConfig{PAI: true}, "restricted",
			outboundID{From: "anonymous", Display: "Anonymous", Withheld: true, Asserted: "trunkuser"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := callerIDRules(t, c.rules)
			if got := r.outbound(c.callerID, "trunkuser"); got != c.want {
				t.Errorf("outbound(%q) = %+v, want %+v", c.callerID, got, c.want)
			}
		})
	}
	hs := outboundID{From: "anonymous", Withheld: true, Asserted: "+4930999"}.headers("carrier.example")
	if len(hs) != 2 || hs[0].Value() != "<sip:+4930999@carrier.example>" || hs[1].Name() != "Privacy" || hs[1].Value() != "id" {
		t.Errorf("headers %v", hs)
	}
}

// The caller of a call in from a trunk is shown in E.164, or anonymous.
func TestCallerIDInbound(t *testing.T) {
	de := callerIDRules(t, CallerIDConfig{CountryCode: "49"})
	cases := []struct {
		name  string
		rules CallerIDConfig
		from  string
		extra string
		want  string
	}{
		{"national", de, "0301234567", "", "+49301234567"},
		{"international", de, "0041441234567", "", "+41441234567"},
		{"e164", de, "+49301234567", "", "+49301234567"},
		{"unknown form", de, "301234567", "", "301234567"},
		{"no country code", CallerIDConfig{}, "0301234567", "", "0301234567"},
		{"anonymous", de, "anonymous", "", "anonymous"},
		{"privacy id", de, "0301234567", "Privacy: id\r\nP-Asserted-Identity: <sip:+49301234567@carrier>\r\n", "anonymous"},
		{"privacy none", de, "0301234567", "Privacy: none\r\n", "+49301234567"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := "INVITE sip:100@voxgate SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
				"From: <sip:" + c.from + "@carrier>;tag=1\r\nTo: <sip:100@voxgate>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n" +
				c.extra + "Content-Length: 0\r\n\r\n"
			m, err := sip.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.rules.inbound(m.(*sip.Request)); got != c.want {
				t.Errorf("inbound caller %q, want %q", got, c.want)
			}
		})
	}
}

// Bad caller-ID rules are refused with the field named under the trunk.
func TestCallerIDConfigErrors(t *testing.T) {
	cases := []struct {
		rules CallerIDConfig
		field string
		msg   string
	}{
		{CallerIDConfig{CountryCode: "049"}, "trunks[0].caller_id.country_code", "not a country calling code"},
		{CallerIDConfig{CountryCode: "1234"}, "trunks[0].caller_id.country_code", "not a country calling code"},
		{CallerIDConfig{CountryCode: "+49"}, "trunks[0].caller_id.country_code", "not a country calling code"},
		{CallerIDConfig{Format: "e164"}, "trunks[0].caller_id.format", "e164 needs country_code"},
		{CallerIDConfig{CountryCode: "49", Format: "pretty"}, "trunks[0].caller_id.format", `unknown format "pretty"`},
		{CallerIDConfig{Number: "bob"}, "trunks[0].caller_id.number", "not a phone number"},
		{CallerIDConfig{Number: "+"}, "trunks[0].caller_id.number", "not a phone number"},
		{CallerIDConfig{CountryCode: "49", NationalPrefix: "x"}, "trunks[0].caller_id.national_prefix", "not digits"},
		{CallerIDConfig{InternationalPrefix: "+"}, "trunks[0].caller_id.international_prefix", "not digits"},
	}
	for _, c := range cases {
		cfg := Config{Trunks: []TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:5060", Register: new(bool), CallerID: c.rules}}}
		err := cfg.Validate()
		var fe *config.Error
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: error %v, want field %s with %q", c.rules, err, c.field, c.msg)
		}
	}
	ok := Config{Trunks: []TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:5060", Register: new(bool),
		CallerID: CallerIDConfig{CountryCode: "49", Number: "030 1234-567", PAI: true}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := ok.Trunks[0].CallerID; got.Number != "0301234567" || got.Format != "e164" || got.NationalPrefix != "0" {
		t.Errorf("after Validate: %+v", got)
	}
}

// Whatever a carrier writes in From, the rules never panic and what comes
// out as a number is E.164.
func FuzzCallerIDNumber(f *testing.F) {
	for _, s := range []string{"0301234567", "+49 30 1234567", "0041441234567", "anonymous", "", "+", "00", "(0)"} {
		f.Add(s, "49")
	}
	f.Fuzz(func(t *testing.T, num, cc string) {
		r := CallerIDConfig{CountryCode: cc}
		if r.validate() != nil {
			r = callerIDRules(t, CallerIDConfig{CountryCode: "49"})
		}
		e, ok := r.e164(num)
		if ok && (len(e) < 2 || e[0] != '+' || !allDigits(e[1:]) || e[1] == '0') {
			t.Fatalf("e164(%q) = %q, not E.164", num, e)
		}
		if !ok && e != num {
			t.Fatalf("e164(%q) changed it to %q without reading it", num, e)
		}
		for _, format := range []string{"e164", "digits", "national", "asis"} {
			r.Format = format
			_ = r.format(num)
		}
		_ = r.outbound(num, "user")
	})
}

// Two voxgates: the caller's trunk writes its numbers nationally, the
// called side's trunk (from its network) shows them in E.164; a withheld
// caller ID arrives as anonymous.
func TestCallerIDAcrossTrunks(t *testing.T) {
	echo := &echoHandler{}
	_, addr := testServer(t, func(cfg *Config) {
		f := false
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: "127.0.0.1:5999", Register: &f, InboundCIDRs: []string{"127.0.0.0/8"},
			CallerID: CallerIDConfig{CountryCode: "49"}}}
	}, WithHandler(echo))
	caller, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.RTPPorts = "34100-34199"
		cfg.Trunks = []TrunkConfig{{Name: "gw", Registrar: addr, Register: &f, Username: "4930999",
			CallerID: CallerIDConfig{CountryCode: "49", Format: "national", PAI: true}}}
	})
	for i, c := range []struct{ callerID, want string }{
		{"+49 30 1234567", "+49301234567"},
		{"anonymous", "anonymous"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		call, err := caller.DialTrunk(ctx, "gw", "4930999", DialOptions{CallerID: c.callerID})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		calls, _ := echo.snapshot()
		if len(calls) != i+1 || calls[i].Caller() != c.want {
			t.Errorf("caller ID %q shown as %q, want %q", c.callerID, calls[len(calls)-1].Caller(), c.want)
		}
		call.Hangup(ctx)
		cancel()
	}
}
