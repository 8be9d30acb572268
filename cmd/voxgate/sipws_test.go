package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
)

// web.sip_websocket: on loopback plain ws:// is fine; off loopback it needs
// the web server's TLS (wss://), and says so with the file, line and field.
func TestSIPWebSocketConfig(t *testing.T) {
	for _, ok := range []string{
		"web:\n  sip_websocket: true\n",
		"web:\n  listen: 127.0.0.1:8080\n  sip_websocket: true\n",
		"web:\n  listen: 0.0.0.0:8443\n  tls_cert: /etc/voxgate/web.crt\n  tls_key: /etc/voxgate/web.key\n  sip_websocket: true\n",
		"web:\n  listen: 192.0.2.10:8080\n  sip_websocket: false\n",
	} {
		cfg, err := parseConfig("my.yaml", []byte(ok))
		if err != nil {
			t.Errorf("%q: %v", ok, err)
			continue
		}
		if want := strings.Contains(ok, "true"); cfg.Web.SIPWebSocket != want {
			t.Errorf("%q: sip_websocket read as %v", ok, cfg.Web.SIPWebSocket)
		}
	}
	_, err := parseConfig("my.yaml", []byte("web:\n  listen: 192.0.2.10:8080\n  sip_websocket: true\n"))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != "my.yaml" || ce.Line != 3 || !strings.Contains(err.Error(), "web.sip_websocket: needs tls_cert") {
		t.Fatalf("got %v, want my.yaml:3 web.sip_websocket needs tls_cert", err)
	}
	if _, err := parseConfig("my.yaml", []byte("web:\n  sip_websocket: sometimes\n")); err == nil || !strings.Contains(err.Error(), "web.sip_websocket") {
		t.Fatalf("a value that is not a boolean: %v", err)
	}
}
