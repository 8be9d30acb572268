package main

import "testing"

// A wrong srtp policy is reported with the file, the line and the field,
// wherever it is set.
func TestSRTPConfigErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"server default", "sip:\n  srtp: maybe\n", `config.yaml:2: sip.srtp: unknown srtp policy "maybe" (want off, offer or require)`},
		{"trunk", "sip:\n  trunks:\n    - {name: c, registrar: \"sip:192.0.2.1\", register: false, srtp: always}\n", `config.yaml:3: sip.trunks[0].srtp: unknown srtp policy "always" (want off, offer or require)`},
		{"user", "users:\n  - name: a\n    password: x\n    srtp: yes\n", `config.yaml:4: users[0].srtp: unknown srtp policy "yes" (want off, offer or require)`},
		{"suite", "sip:\n  srtp_suites:\n    - AES_CM_128_HMAC_SHA1_80\n    - F8_128_HMAC_SHA1_80\n", `config.yaml:4: sip.srtp_suites[1]: unknown crypto suite "F8_128_HMAC_SHA1_80" (want AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig("config.yaml", []byte(c.yaml))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
	cfg, err := parseConfig("config.yaml", []byte("sip:\n  srtp: Offer\n  trunks:\n    - {name: c, registrar: \"sip:192.0.2.1\", register: false, srtp: REQUIRE}\nusers:\n  - {name: a, password: x, srtp: off}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIP.SRTP != "offer" || cfg.SIP.Trunks[0].SRTP != "require" || users(cfg)[0].SRTP != "off" {
		t.Fatalf("policies read %q %q %q", cfg.SIP.SRTP, cfg.SIP.Trunks[0].SRTP, users(cfg)[0].SRTP)
	}
}
