package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// testCerts writes a throw-away CA and a server certificate for 127.0.0.1
// and localhost signed by it into a temporary directory.
func testCerts(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voxgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", kb)
}

// startTLSGateway starts voxgate with a TLS listener too; it returns the
// TLS listener's address and the CA file.
func startTLSGateway(t *testing.T) (*gateway, string, string) {
	t.Helper()
	caFile, cert, key := testCerts(t)
	tlsPort := peertest.FreePorts(t, 1)
	g := startGateway(t, func(cfg *Config) {
		cfg.SIP.Listen = append(cfg.SIP.Listen, sip.Listener{Transport: "tls", Addr: fmt.Sprintf("127.0.0.1:%d", tlsPort)})
		cfg.SIP.TLSCert, cfg.SIP.TLSKey = cert, key
	})
	return g, fmt.Sprintf("127.0.0.1:%d", tlsPort), caFile
}

// baresip registers over TLS, calls the echo over TLS and hears itself;
// then voxgate calls it over its registration's connection.
func TestBaresipTLS(t *testing.T) {
	peertest.Need(t, "baresip")
	g, tlsAddr, caFile := startTLSGateway(t)
	const freq = 700
	b := peertest.StartPhone(t, tlsAddr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: freq,
		Register: true, Dial: "9196", TLS: true, CAFile: caFile})
	bs := g.srv.Bindings("alice")
	if len(bs) != 1 || !strings.EqualFold(bs[0].Transport, "tls") {
		t.Fatalf("bindings %+v, want one over TLS", bs)
	}
	time.Sleep(3 * time.Second)
	b.Command("hangup", "")
	if !b.WaitFor("terminated", 5*time.Second) {
		t.Fatalf("call did not end:\n%s", b.Output())
	}
	if secs := b.HeardSeconds(freq, 0); secs < 1.5 {
		t.Fatalf("baresip heard %.1fs of its echo over TLS:\n%s", secs, b.Output())
	}
	if !strings.Contains(g.log.String(), "source=tls:127.0.0.1:") {
		t.Errorf("voxgate logged no request over TLS")
	}

	// voxgate calls alice: the INVITE goes over her connection.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := g.srv.DialUser(ctx, "alice", "bob")
	if err != nil {
		t.Fatalf("call to alice over TLS: %v\n%s", err, b.Output())
	}
	if !b.WaitFor("Call established", 5*time.Second) {
		t.Fatalf("baresip did not answer:\n%s", b.Output())
	}
	c.Hangup(ctx)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call to alice did not end")
	}
	// libre reports a BYE received as the session closed with ECONNRESET.
	if !b.WaitFor("sip:bob@voxgate: session closed", 5*time.Second) {
		t.Errorf("baresip did not see our BYE:\n%s", b.Output())
	}
}
