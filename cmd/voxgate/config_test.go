package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/sip"
)

func TestEmbeddedDefaultConfig(t *testing.T) {
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadDialplan("", cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) < 2 || cfg.SIP.Listen[0].Addr != "127.0.0.1:5060" {
		t.Fatalf("unexpected default config %+v", cfg)
	}
}

// Every config error names the file, the line and the field.
func TestConfigErrorsNameFileLineField(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		field      string // substring of the message
	}{
		{"unknown field", "log:\n  level: info\nsip:\n  listn: []\n", 4, "listn"},
		{"bad level", "log:\n  level: loud\n", 2, "log.level"},
		{"bad transport", "sip:\n  listen:\n    - transport: udp\n      addr: 127.0.0.1:5060\n    - transport: sctp\n      addr: 127.0.0.1:5060\n", 5, "sip.listen[1].transport"},
		{"bad addr", "sip:\n  listen:\n    - transport: udp\n      addr: nowhere\n", 4, "sip.listen[0].addr"},
		{"bad rtp range", "sip:\n  rtp_ports: 20000-10\n", 2, "sip.rtp_ports"},
		{"trunk without registrar", "sip:\n  trunks:\n    - name: c\n      username: u\n", 3, "sip.trunks[0].registrar"},
		{"trunk bad cidr", "sip:\n  trunks:\n    - name: c\n      registrar: sip:10.0.0.1\n      register: false\n      inbound_cidrs: [\"10.0.0.0/8\", \"nope\"]\n", 6, "sip.trunks[0].inbound_cidrs[1]"},
		{"user without password", "users:\n  - name: alice\n  - name: bob\n    password: x\n", 2, "users[0].password"},
		{"duplicate user", "users:\n  - {name: a, password: x}\n  - {name: a, password: y}\n", 3, "users[1].name"},
		{"bad ha1", "users:\n  - name: a\n    ha1: abc\n", 3, "users[0].ha1"},
		{"bad codec", "sip:\n  codecs: [pcmu, g729]\n", 2, "sip.codecs[1]"},
		{"session timer below 90s", "sip:\n  session_timers:\n    expires: 600s\n    min_se: 30s\n", 4, "sip.session_timers.min_se: must be whole seconds, at least 90s"},
		{"session timer mode", "sip:\n  session_timers:\n    mode: maybe\n", 3, "sip.session_timers.mode"},
		{"wrong type", "drain_timeout: forever\n", 1, "drain_timeout"},
		{"prompt dir missing", "rooms:\n  prompt_dir: /nonexistent/prompts\n", 2, "rooms.prompt_dir"},
		{"api token not a string", "web:\n  api_token: [a, b]\n", 2, "api_token"},
		{"syntax error", "sip:\n  listen: [\n", 2, ""},
		{"unknown field in a list", "users:\n  - name: a\n    pasword: x\n", 3, "users[0].pasword"},
		{"bad web ports", "web:\n  listen: 127.0.0.1:0\n  udp_ports: 5-4\n", 3, "web.udp_ports"},
		{"bad ice ip", "web:\n  ice_ips:\n    - 10.0.0.1\n    - ten\n", 4, "web.ice_ips[1]"},
		{"bad public ip", "web:\n  public_ip: nowhere\n", 2, "web.public_ip"},
		{"bad rooms max", "rooms:\n  rate: 8000\n  max: -1\n", 3, "rooms.max"},
		{"opus complexity out of range", "rooms:\n  rate: 8000\n  opus_complexity: 11\n", 3, "rooms.opus_complexity: 11 is out of range (want 1..10)"},
		{"webhook bad url", "data_dir: /tmp/x\nwebhooks:\n  - name: a\n    url: ftp://x\n    secret: 0123456789abcdef\n", 4, "webhooks[0].url"},
		{"webhook unknown event", "data_dir: /tmp/x\nwebhooks:\n  - name: a\n    url: http://x\n    secret: 0123456789abcdef\n    events: [call.ended, call.endd]\n", 6, `webhooks[0].events[1]: unknown event "call.endd"`},
		{"webhook short secret", "data_dir: /tmp/x\nwebhooks:\n  - {name: a, url: \"http://x\", secret: short}\n", 3, "webhooks[0].secret"},
		{"webhooks without data_dir", "webhooks:\n  - {name: a, url: \"http://x\", secret: 0123456789abcdef}\n", 1, "webhooks need data_dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("my.yaml", []byte(tc.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if ce.File != "my.yaml" || ce.Line != tc.line || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %q (line %d), want my.yaml line %d naming %q", err, ce.Line, tc.line, tc.field)
			}
		})
	}
}

// A config mistake the SIP side finds only when it starts is reported like
// the others, with the file, the line and the field.
func TestStartErrorNamesFileLineField(t *testing.T) {
	cfg, err := parseConfig("my.yaml", []byte("log:\n  level: info\nsip:\n  listen:\n    - transport: udp\n      addr: localhost:5060\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sip.NewServer(cfg.SIP)
	if err == nil {
		t.Fatal("a listener without an IP address started")
	}
	err = configErr("my.yaml", cfg, err)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != "my.yaml" || ce.Line != 6 || ce.Field != "sip.listen[0].addr" {
		t.Fatalf("got %q", err)
	}
	if want := "my.yaml:6: sip.listen[0].addr: the first listener needs an IP address"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %q, want it to start with %q", err, want)
	}
	plain := errors.New("address in use")
	if got := configErr("my.yaml", cfg, plain); got != plain {
		t.Fatalf("an error that is not about the config became %q", got)
	}
}

// The messages a user reads for the usual mistakes, word for word: did you
// mean, what a value should be, the allowed values.
func TestConfigErrorMessages(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"did you mean", "log:\n  level: info\nsip:\n  domian: voxgate\n", `config.yaml:4: sip.domian: unknown field (did you mean "domain"?)`},
		{"did you mean, top level", "drain_timout: 5s\n", `config.yaml:1: drain_timout: unknown field (did you mean "drain_timeout"?)`},
		{"did you mean, in a list", "users:\n  - name: a\n    pasword: x\n", `config.yaml:3: users[0].pasword: unknown field (did you mean "password"?)`},
		{"did you mean, guard", "sip:\n  guard:\n    ban_afer: 3\n", `config.yaml:3: sip.guard.ban_afer: unknown field (did you mean "ban_after"?)`},
		{"the fields there are", "rooms:\n  colour: red\n", "config.yaml:2: rooms.colour: unknown field (known fields: max, opus_complexity, prompt_dir, rate, record_dir, tones)"},
		{"not a whole number", "log:\n  level: info\n\nrooms:\n  max: 3\n  tones: true\n  record_dir: \"\"\n  prompt_dir: \"\"\n  rate: 16k\n", `config.yaml:9: rooms.rate: "16k" is not a whole number`},
		{"a duration", "drain_timeout: 5 seconds\n", `config.yaml:1: drain_timeout: "5 seconds" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"a duration without unit", "sip:\n  guard:\n    window: 300\n", `config.yaml:3: sip.guard.window: "300" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"true or false", "rooms:\n  tones: sometimes\n", `config.yaml:2: rooms.tones: "sometimes" is not true or false`},
		{"a list", "sip:\n  codecs: opus\n", `config.yaml:2: sip.codecs: "opus" is not a list (write [a, b] or one "- item" per line)`},
		{"log levels", "log:\n  level: loud\n", `config.yaml:2: log.level: unknown level "loud" (want debug, info, warn or error)`},
		{"log formats", "log:\n  format: xml\n", `config.yaml:2: log.format: unknown format "xml" (want text or json)`},
		{"transports", "sip:\n  listen:\n    - {transport: sctp, addr: \"127.0.0.1:5060\"}\n", `config.yaml:3: sip.listen[0].transport: unknown transport "sctp" (want udp, tcp or tls)`},
		{"codecs", "sip:\n  codecs: [pcmu, g729]\n", `config.yaml:2: sip.codecs[1]: unknown codec "g729" (want PCMU, PCMA, G722 or opus)`},
		{"digest algorithms", "sip:\n  digest_algorithms: [sha1]\n", `config.yaml:2: sip.digest_algorithms[0]: unknown algorithm "SHA1" (want MD5 or SHA-256)`},
		{"mixing rates", "rooms:\n  rate: 44100\n", "config.yaml:2: rooms.rate: 44100 is not a mixing rate (want 8000, 16000, 24000 or 48000)"},
		{"trunk transports", "sip:\n  trunks:\n    - {name: c, registrar: \"sip:192.0.2.1\", register: false, transport: sctp}\n", `config.yaml:3: sip.trunks[0].transport: unknown transport "sctp" (want udp, tcp or tls)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig("config.yaml", []byte(c.yaml))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}
