package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
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

// startTLSGateway starts voxgate with a TLS listener too (and mutate's
// changes to the config, and sipOpts); it returns the TLS listener's address
// and the CA file.
func startTLSGateway(t *testing.T, mutate func(*Config), sipOpts ...sip.Option) (*gateway, string, string) {
	t.Helper()
	caFile, cert, key := testCerts(t)
	tlsPort := peertest.FreePorts(t, 1)
	g := startGatewayWith(t, func(cfg *Config) {
		cfg.SIP.Listen = append(cfg.SIP.Listen, sip.Listener{Transport: "tls", Addr: fmt.Sprintf("127.0.0.1:%d", tlsPort)})
		cfg.SIP.TLSCert, cfg.SIP.TLSKey = cert, key
		if mutate != nil {
			mutate(cfg)
		}
	}, sipOpts...)
	return g, fmt.Sprintf("127.0.0.1:%d", tlsPort), caFile
}

// baresip registers over TLS, calls the echo over TLS and hears itself;
// then voxgate calls it over its registration's connection.
func TestBaresipTLS(t *testing.T) {
	peertest.Need(t, "baresip")
	g, tlsAddr, caFile := startTLSGateway(t, nil)
	const freq = 700
	b := peertest.StartPhone(t, tlsAddr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: freq,
		Register: true, Dial: "9196", Transport: "tls", CAFile: caFile})
	bs := g.srv.Bindings("alice")
	if len(bs) != 1 || !strings.EqualFold(bs[0].Transport, "tls") {
		t.Fatalf("bindings %+v, want one over TLS", bs)
	}
	time.Sleep(3 * time.Second)
	b.Command("hangup", "")
	if !b.WaitEnded(5 * time.Second) {
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

// copyFile copies src to dst (for swapping certificates under a running
// voxgate).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsOptions sends an OPTIONS over c and reads the status line.
func tlsOptions(t *testing.T, c *tls.Conn, id string) string {
	t.Helper()
	lp := c.LocalAddr().(*net.TCPAddr).Port
	fmt.Fprintf(c, "OPTIONS sip:voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK%s\r\nFrom: <sip:g@example.org>;tag=1\r\n"+
		"To: <sip:voxgate>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", lp, id, id)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func waitLog(p *process, s string) bool {
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(p.output(), s) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return strings.Contains(p.output(), s)
}

// SIGHUP reloads the SIP TLS certificate: new handshakes get the new one,
// a connection up before keeps working, a broken pair keeps the old one.
func TestSIGHUPReloadsTLSCertificate(t *testing.T) {
	ca1, cert1, key1 := testCerts(t)
	ca2, cert2, key2 := testCerts(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "sip.crt"), filepath.Join(dir, "sip.key")
	copyFile(t, cert1, cert)
	copyFile(t, key1, key)
	port := peertest.FreePorts(t, 2)
	rtp := peertest.FreePorts(t, 20)
	p := startBinaryConfig(t, fmt.Sprintf(`log: {level: debug, format: json}
sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:%d"}
    - {transport: tls, addr: "127.0.0.1:%d"}
  tls_cert: %s
  tls_key: %s
  rtp_ports: "%d-%d"
users:
  - {name: alice, password: alice-secret}
web: {listen: "127.0.0.1:0"}
`, port, port+1, cert, key, rtp, rtp+19), fmt.Sprintf("127.0.0.1:%d", port))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", port+1)
	trusting := func(caFile string) *tls.Config {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	live, err := tls.Dial("tcp", tlsAddr, trusting(ca1))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if st := tlsOptions(t, live, "before"); !strings.HasPrefix(st, "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TLS: %q", st)
	}

	copyFile(t, cert2, cert)
	copyFile(t, key2, key)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitLog(p, "TLS certificate reloaded") {
		t.Fatal("no reload logged")
	}
	c2, err := tls.Dial("tcp", tlsAddr, trusting(ca2))
	if err != nil {
		t.Fatalf("a new handshake after SIGHUP does not get the new certificate: %v", err)
	}
	c2.Close()
	if st := tlsOptions(t, live, "after"); !strings.HasPrefix(st, "SIP/2.0 200") {
		t.Fatalf("the connection up before SIGHUP: %q", st)
	}

	copyFile(t, key1, key) // the key no longer matches the certificate
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitLog(p, "keeping the old one") || !strings.Contains(p.output(), "private key does not match") {
		t.Fatal("a broken pair on SIGHUP was not reported with its reason")
	}
	c3, err := tls.Dial("tcp", tlsAddr, trusting(ca2))
	if err != nil {
		t.Fatalf("after a failed reload the certificate in use changed: %v", err)
	}
	c3.Close()
}
