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
		{"wrong type", "drain_timeout: forever\n", 1, "drain_timeout"},
		{"prompt dir missing", "rooms:\n  prompt_dir: /nonexistent/prompts\n", 2, "rooms.prompt_dir"},
		{"api token not a string", "web:\n  api_token: [a, b]\n", 2, "api_token"},
		{"syntax error", "sip:\n  listen: [\n", 2, ""},
		{"unknown field in a list", "users:\n  - name: a\n    pasword: x\n", 3, "users[0].pasword"},
		{"bad web ports", "web:\n  listen: 127.0.0.1:0\n  udp_ports: 5-4\n", 3, "web.udp_ports"},
		{"bad ice ip", "web:\n  ice_ips:\n    - 10.0.0.1\n    - ten\n", 4, "web.ice_ips[1]"},
		{"bad public ip", "web:\n  public_ip: nowhere\n", 2, "web.public_ip"},
		{"bad rooms max", "rooms:\n  rate: 8000\n  max: -1\n", 3, "rooms.max"},
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
