package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
)

// CallerIDConfig are a trunk's caller-ID rules: how numbers are written
// toward the carrier and how the carrier's callers are shown (README
// "Caller ID on trunks").
type CallerIDConfig struct {
	// CountryCode (digits, e.g. "49") makes national numbers E.164: with
	// national_prefix "0", 030 1234567 is +49301234567.
	CountryCode string `yaml:"country_code"`
	// NationalPrefix starts a national number (default "0");
	// InternationalPrefix an international one (default "00").
	NationalPrefix      string `yaml:"national_prefix"`
	InternationalPrefix string `yaml:"international_prefix"`
	// Format of the caller number sent in From (and P-Asserted-Identity):
	// e164 (+49301234567, the default with country_code), digits (E.164
	// without the plus: 49301234567), national (0301234567) or asis (as
	// the dialplan gives it, the default without country_code).
	Format string `yaml:"format"`
	// Number is a fixed caller number every call out through the trunk
	// shows, whatever the dialplan's caller_id (the carrier accepts only
	// its own numbers).
	Number string `yaml:"number"`
	// PAI adds P-Asserted-Identity (RFC 3325) with the caller number; a
	// withheld caller ID then still asserts it, with Privacy: id.
	PAI bool `yaml:"pai"`
}

// Caller-ID formats.
const (
	formatE164     = "e164"
	formatDigits   = "digits"
	formatNational = "national"
	formatAsIs     = "asis"
)

// anonymousUser is the From user of a call whose caller ID is withheld
// (RFC 3323 section 4.1.1.3).
const anonymousUser = "anonymous"

func (c *CallerIDConfig) validate() error {
	if c.CountryCode != "" && (!allDigits(c.CountryCode) || len(c.CountryCode) > 3 || c.CountryCode[0] == '0') {
		return config.Fieldf("country_code", "%q is not a country calling code (1 to 3 digits, e.g. 49)", c.CountryCode)
	}
	if c.CountryCode != "" && c.NationalPrefix == "" {
		c.NationalPrefix = "0"
	}
	if c.InternationalPrefix == "" {
		c.InternationalPrefix = "00"
	}
	if c.NationalPrefix != "" && !allDigits(c.NationalPrefix) {
		return config.Fieldf("national_prefix", "%q is not digits", c.NationalPrefix)
	}
	if !allDigits(c.InternationalPrefix) {
		return config.Fieldf("international_prefix", "%q is not digits", c.InternationalPrefix)
	}
	c.Format = strings.ToLower(c.Format)
	switch c.Format {
	case "":
		c.Format = formatAsIs
		if c.CountryCode != "" {
			c.Format = formatE164
		}
	case formatAsIs:
	case formatE164, formatDigits, formatNational:
		if c.CountryCode == "" {
			return config.Fieldf("format", "%s needs country_code", c.Format)
		}
	default:
		return config.Fieldf("format", "unknown format %q (want e164, digits, national or asis)", c.Format)
	}
	if c.Number != "" {
		n := stripSeparators(c.Number)
		if d := strings.TrimPrefix(n, "+"); d == "" || !allDigits(d) {
			return config.Fieldf("number", "%q is not a phone number (digits, an optional leading +)", c.Number)
		}
		if c.CountryCode == "" && !strings.HasPrefix(n, "+") && c.Format != formatAsIs {
			return config.Fieldf("number", "%q is not E.164 (+CC...) and there is no country_code", c.Number)
		}
		c.Number = n
	}
	return nil
}

// e164 writes num in E.164 (+CCNNN) when it can tell how: it has a plus,
// the international prefix or the national prefix (with a country code).
// Anything else (a name, an extension, a number without any prefix) comes
// back unchanged, with false.
func (c *CallerIDConfig) e164(num string) (string, bool) {
	n := stripSeparators(num)
	switch {
	case n == "":
		return num, false
	case n[0] == '+':
		if d := n[1:]; d != "" && allDigits(d) && d[0] != '0' {
			return n, true
		}
	case !allDigits(n):
	case c.InternationalPrefix != "" && strings.HasPrefix(n, c.InternationalPrefix) && len(n) > len(c.InternationalPrefix):
		if d := n[len(c.InternationalPrefix):]; d[0] != '0' {
			return "+" + d, true
		}
	case c.CountryCode != "" && c.NationalPrefix != "" && strings.HasPrefix(n, c.NationalPrefix) && len(n) > len(c.NationalPrefix):
		if d := n[len(c.NationalPrefix):]; d[0] != '0' { // 00 is no national number
			return "+" + c.CountryCode + d, true
		}
	}
	return num, false
}

// format writes num as the trunk's format says (asis, or a number it
// cannot read, unchanged).
func (c *CallerIDConfig) format(num string) string {
	if c.Format == formatAsIs || c.Format == "" {
		return num
	}
	e, ok := c.e164(num)
	if !ok {
		return num
	}
	switch c.Format {
	case formatDigits:
		return e[1:]
	case formatNational:
		if rest, ok := strings.CutPrefix(e[1:], c.CountryCode); ok {
			return c.NationalPrefix + rest
		}
		return c.InternationalPrefix + e[1:] // a foreign number
	}
	return e
}

// outboundID is the identity a call out through a trunk carries.
type outboundID struct {
	From     string // the From user
	Display  string // the From display name ("" for none)
	Withheld bool   // From is anonymous; Privacy: id
	Asserted string // the P-Asserted-Identity user ("" for none)
}

// outbound works out the identity of a call out: callerID is what the
// dialplan asks for ("" for the trunk's username, "anonymous" to withhold
// it), fallback the trunk's username.
func (c *CallerIDConfig) outbound(callerID, fallback string) outboundID {
	withheld := isWithheld(callerID)
	num := callerID
	if c.Number != "" {
		num = c.Number
	} else if num == "" || withheld {
		num = fallback
	}
	num = c.format(num)
	id := outboundID{From: num}
	if c.PAI && num != "" {
		id.Asserted = num
	}
	if withheld {
		id.From, id.Display, id.Withheld = anonymousUser, "Anonymous", true
	}
	return id
}

// inbound is how the caller of a call in from the trunk is shown: its
// number in E.164 when the trunk has a country code, "anonymous" when it
// is withheld (an anonymous From, or Privacy: id with no identity
// asserted).
func (c *CallerIDConfig) inbound(req *sip.Request) string {
	user := req.From().Address.User
	if isWithheld(user) || privacyID(req) {
		return anonymousUser
	}
	if c.CountryCode == "" {
		return user
	}
	if e, ok := c.e164(user); ok {
		return e
	}
	return user
}

// headers are the identity headers of a call out.
func (id outboundID) headers(host string) []sip.Header {
	var hs []sip.Header
	if id.Asserted != "" {
		hs = append(hs, sip.NewHeader("P-Asserted-Identity", "<sip:"+id.Asserted+"@"+host+">"))
	}
	if id.Withheld {
		hs = append(hs, sip.NewHeader("Privacy", "id"))
	}
	return hs
}

// isWithheld reports whether a caller ID asks to be withheld.
func isWithheld(s string) bool {
	switch strings.ToLower(s) {
	case anonymousUser, "withheld", "restricted", "private":
		return true
	}
	return false
}

// privacyID reports whether a request asks for its identity to be hidden.
func privacyID(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Privacy") {
		for _, v := range strings.FieldsFunc(h.Value(), func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
			if strings.EqualFold(v, "id") {
				return true
			}
		}
	}
	return false
}

// stripSeparators drops what people write inside phone numbers: spaces,
// dashes, dots, parentheses and slashes.
func stripSeparators(s string) string {
	if !strings.ContainsAny(s, " -.()/") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()/", r) {
			return -1
		}
		return r
	}, s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// trunkConfig returns the configuration of the named trunk (nil: none).
func (s *Server) trunkConfig(name string) *TrunkConfig {
	for i := range s.cfg.Trunks {
		if s.cfg.Trunks[i].Name == name {
			return &s.cfg.Trunks[i]
		}
	}
	return nil
}
