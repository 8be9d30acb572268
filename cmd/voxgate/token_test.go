package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/webclient"
)

// `voxgate token` prints a fresh random token and a web.tokens line that,
// pasted into a config, validates and holds the token's hash.
func TestTokenCmd(t *testing.T) {
	var out bytes.Buffer
	if err := tokenCmd([]string{"-name", "grafana", "-scopes", "metrics,read"}, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^token: (\S+)$`).FindStringSubmatch(out.String())
	line := regexp.MustCompile(`(?m)^  - \{.*\}$`).FindString(out.String())
	if m == nil || line == "" {
		t.Fatalf("no token or YAML line in:\n%s", out.String())
	}
	token := m[1]
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url: %v", token, err)
	}
	cfg, err := parseConfig("t.yaml", []byte("web:\n  tokens:\n  "+line+"\n"))
	if err != nil {
		t.Fatalf("the printed line %q does not parse: %v", line, err)
	}
	tk := cfg.Web.Tokens[0]
	if tk.Name != "grafana" || tk.SHA256 != webclient.HashToken(token) || strings.Join(tk.Scopes, ",") != "metrics,read" {
		t.Fatalf("parsed %+v from %q", tk, line)
	}
	var again bytes.Buffer
	_ = tokenCmd([]string{"-name", "grafana"}, &again)
	if strings.Contains(again.String(), token) || !strings.Contains(again.String(), "scopes: [read]}") {
		t.Fatalf("a second run repeats the token or lacks the default scope:\n%s", again.String())
	}

	for _, c := range []struct {
		args []string
		has  string
	}{
		{nil, "give -name"},
		{[]string{"-name", "x", "-scopes", "read,write"}, `unknown scope "write": the scopes are admin, read, metrics`},
		{[]string{"-name", "a: b"}, "use letters"},
		{[]string{"-name", "x", "extra"}, "unexpected argument"},
	} {
		if err := tokenCmd(c.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), c.has) {
			t.Errorf("token %q: %v, want an error with %q", c.args, err, c.has)
		}
	}
}

// A bad web.tokens entry is a config error naming its line and field.
func TestTokenConfigErrorsNameLine(t *testing.T) {
	src := "web:\n  tokens:\n    - {name: a, sha256: " + webclient.HashToken("x") + ", scopes: [read]}\n    - name: b\n      sha256: " +
		webclient.HashToken("y") + "\n      scopes: [read, everything]\n"
	_, err := parseConfig("my.yaml", []byte(src))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Line != 6 || ce.Field != "web.tokens[1].scopes[1]" || !strings.Contains(err.Error(), "admin, read, metrics") {
		t.Fatalf("got %v (%+v)", err, ce)
	}
}
