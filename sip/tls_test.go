package sip

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/internal/config"
)

// A TLS listener answers requests over TLS.
func TestTLSListener(t *testing.T) {
	cert, key := newTestCA(t).issue(t, t.TempDir(), "voxgate test")
	s, _ := testServer(t, func(cfg *Config) {
		cfg.Listen = []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}, {Transport: "tls", Addr: "127.0.0.1:0"}}
		cfg.TLSCert, cfg.TLSKey = cert, key
	})
	addr := s.Addrs()[1].String()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lp := c.LocalAddr().(*net.TCPAddr).Port
	msg := fmt.Sprintf("OPTIONS sip:voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bKtls1\r\nFrom: <sip:g@example.org>;tag=1\r\n"+
		"To: <sip:voxgate>\r\nCall-ID: tls1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", lp)
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("over TLS: %q %v", line, err)
	}
}

func TestTLSNeedsCertificate(t *testing.T) {
	cfg := Config{Listen: []Listener{{Transport: "tls", Addr: "127.0.0.1:5061"}}}
	err := cfg.Validate()
	if fe, ok := err.(*config.Error); !ok || fe.Field != "listen[0].transport" {
		t.Fatalf("got %v", err)
	}
}
