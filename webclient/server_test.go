package webclient

import (
	"errors"
	"testing"

	"github.com/voxgate/voxgate/internal/config"
)

// Validate names the field below the web section that is wrong.
func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"listen", Config{Listen: "8080"}, "listen"},
		{"udp ports", Config{UDPPorts: "41000-40000"}, "udp_ports"},
		{"ice ip", Config{ICEIPs: []string{"10.0.0.1", "ten"}}, "ice_ips[1]"},
		{"public ip", Config{PublicIP: "nowhere"}, "public_ip"},
		{"good", Config{ICEIPs: []string{"10.0.0.1"}, PublicIP: "192.0.2.1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *config.Error
			if !errors.As(err, &e) || e.Field != c.field {
				t.Fatalf("got %v, want an error of field %q", err, c.field)
			}
		})
	}
}
