package sip

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
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// testCA is a throw-away certificate authority for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voxgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a server certificate for 127.0.0.1 and the given DNS names,
// signed by the CA, into dir as cert.pem and key.pem.
func (ca *testCA) issue(t *testing.T, dir, cn string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: names,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsServer starts a server with a UDP and a TLS listener; it returns the
// TLS listener's address.
func tlsServer(t *testing.T, cert, key string, mutate func(*Config), opts ...Option) (*Server, string) {
	t.Helper()
	s, _ := testServer(t, func(cfg *Config) {
		cfg.Listen = []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}, {Transport: "tls", Addr: "127.0.0.1:0"}}
		cfg.TLSCert, cfg.TLSKey = cert, key
		if mutate != nil {
			mutate(cfg)
		}
	}, opts...)
	return s, s.Addrs()[1].String()
}

// tlsPhone is a hand-written SIP client over one TLS connection.
type tlsPhone struct {
	t    *testing.T
	conn *tls.Conn
	rd   *bufio.Reader
}

func dialTLSPhone(t *testing.T, addr string, roots *x509.CertPool) *tlsPhone {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsPhone{t: t, conn: c, rd: bufio.NewReader(c)}
}

func (p *tlsPhone) port() int { return p.conn.LocalAddr().(*net.TCPAddr).Port }

func (p *tlsPhone) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next message (start line, headers and body) within d.
func (p *tlsPhone) read(d time.Duration) (string, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	var head strings.Builder
	length := 0
	for {
		line, err := p.rd.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		if line == "\r\n" && head.Len() == 0 {
			continue // keep-alive
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
			fmt.Sscan(strings.TrimSpace(v), &length)
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.rd, body); err != nil {
		return head.String(), err
	}
	return head.String() + string(body), nil
}

// header returns the value of the first header name in msg.
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// options sends an OPTIONS and wants a 200 back.
func (p *tlsPhone) options(id string) error {
	p.send(fmt.Sprintf("OPTIONS sip:voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK%s\r\nFrom: <sip:g@example.org>;tag=1\r\n"+
		"To: <sip:voxgate>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", p.port(), id, id))
	res, err := p.read(3 * time.Second)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		return fmt.Errorf("OPTIONS answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
	return nil
}

// peerCN is the common name of the certificate a TLS listener presents.
func peerCN(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// ReloadTLS (SIGHUP) gives new handshakes the new certificate; a connection
// up before keeps working; a bad new pair keeps the old one, with a reason.
func TestTLSReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cert, key := ca.issue(t, dir, "first")
	logs := &syncWriter{}
	s, addr := tlsServer(t, cert, key, nil, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if cn := peerCN(t, addr, ca.pool()); cn != "first" {
		t.Fatalf("presented %q", cn)
	}
	live := dialTLSPhone(t, addr, ca.pool())
	if err := live.options("live1"); err != nil {
		t.Fatal(err)
	}

	ca.issue(t, dir, "second") // overwrites cert.pem and key.pem
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn := peerCN(t, addr, ca.pool()); cn != "second" {
		t.Fatalf("after reload presented %q", cn)
	}
	if err := live.options("live2"); err != nil {
		t.Fatalf("the connection up before the reload: %v", err)
	}

	// A broken pair: the key does not match the certificate.
	other := t.TempDir()
	_, otherKey := ca.issue(t, other, "third")
	kb, _ := os.ReadFile(otherKey)
	if err := os.WriteFile(key, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.ReloadTLS()
	if err == nil {
		t.Fatal("a key not matching the certificate was taken")
	}
	if cn := peerCN(t, addr, ca.pool()); cn != "second" {
		t.Fatalf("after a bad reload presented %q, want the old certificate", cn)
	}
	if !strings.Contains(logs.String(), "keeping the old one") || !strings.Contains(logs.String(), "private key does not match") {
		t.Errorf("the failed reload is not logged with its reason:\n%s", logs)
	}
}

// A peer that sends garbage and one that never starts its handshake are
// cut off (the latter after the handshake timeout) and logged with their
// address and the reason; a call and a TLS connection up meanwhile carry on.
func TestTLSFaultyPeersCutOff(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "voxgate")
	logs := &syncWriter{}
	echo := &echoHandler{}
	s, addr := tlsServer(t, cert, key, func(cfg *Config) { cfg.TLSHandshakeTimeout = 300 * time.Millisecond },
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))), WithHandler(echo))

	// A call in progress, from a second voxgate calling this one over TLS.
	caller, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.RTPPorts = "34000-34099"
		cfg.Trunks = []TrunkConfig{{Name: "peer", Registrar: "sip:" + addr + ";transport=tls", TLSCAFile: ca.file, Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := caller.DialTrunk(ctx, "peer", "100", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live := dialTLSPhone(t, addr, ca.pool())

	garbage, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	_, _ = garbage.Write([]byte("INVITE sip:x SIP/2.0\r\n\r\n not a TLS record at all\r\n"))
	start := time.Now() // before the silent peer connects: its timer starts later
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for name, c := range map[string]net.Conn{"garbage": garbage, "silent": silent} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("%s peer was not cut off", name)
				}
				break
			}
		}
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("the silent peer was cut off after %s, before the handshake timeout", waited)
	}
	// crypto/tls closes a connection whose handshake context ends before
	// HandshakeContext returns: the count and the log line follow the close
	// by a moment.
	wants := []string{
		"peer=" + garbage.LocalAddr().String(), "peer=" + silent.LocalAddr().String(),
		"no TLS handshake within 300ms", "first record does not look like a TLS handshake",
	}
	logged := func() bool {
		out := logs.String()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); (s.TLSHandshakeFailures() < 2 || !logged()) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.TLSHandshakeFailures(); n != 2 || s.ServerStats().TLSHandshakeFailures != 2 {
		t.Errorf("%d handshake failures counted (%d in the stats /metrics reads), want 2", n, s.ServerStats().TLSHandshakeFailures)
	}
	out := logs.String()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// The rest carries on.
	if err := live.options("after-faults"); err != nil {
		t.Fatalf("a good TLS connection after the faults: %v", err)
	}
	got := toneThrough(t, call, 700, 1500*time.Millisecond)
	if secs := audio.ToneSeconds(got, 8000, 700, 0.2); secs < 0.8 {
		t.Fatalf("the call over TLS after the faults: %.2fs of echoed tone", secs)
	}
	call.Hangup(ctx)
}

// A phone registered over TLS whose Contact port does not listen (as
// behind NAT) is called over the connection its REGISTER came on, and the
// BYE follows the same way.
func TestTLSPhoneReachedOverItsConnection(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "voxgate")
	s, addr := tlsServer(t, cert, key, nil)
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()

	p := dialTLSPhone(t, addr, ca.pool())
	contact := fmt.Sprintf("<sip:alice@127.0.0.1:%d;transport=tls>", dead)
	reg := func(cseq int, auth string) string {
		return fmt.Sprintf("REGISTER sip:voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bKreg%d\r\nFrom: <sip:alice@voxgate>;tag=r1\r\n"+
			"To: <sip:alice@voxgate>\r\nCall-ID: tlsreg\r\nCSeq: %d REGISTER\r\nContact: %s\r\nExpires: 300\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
			dead, cseq, cseq, contact, auth)
	}
	p.send(reg(1, ""))
	res, err := p.read(3 * time.Second)
	if err != nil || !strings.HasPrefix(res, "SIP/2.0 401") {
		t.Fatalf("first REGISTER: %q %v", res, err)
	}
	authz := digestHeader(t, header(res, "WWW-Authenticate"), "REGISTER", "sip:voxgate", "alice", "alice-secret")
	p.send(reg(2, "Authorization: "+authz+"\r\n"))
	if res, err = p.read(3 * time.Second); err != nil || !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("REGISTER with credentials: %q %v", res, err)
	}
	bs := s.Bindings("alice")
	if len(bs) != 1 || !strings.EqualFold(bs[0].Transport, "tls") {
		t.Fatalf("bindings %+v", bs)
	}

	type result struct {
		c   *Call
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		c, err := s.DialBinding(ctx, bs[0], "bob")
		done <- result{c, err}
	}()
	inv, err := p.read(5 * time.Second)
	if err != nil || !strings.HasPrefix(inv, "INVITE ") {
		t.Fatalf("no INVITE on the registration's connection: %q %v", inv, err)
	}
	if via := header(inv, "Via"); !strings.HasPrefix(via, "SIP/2.0/TLS") {
		t.Errorf("INVITE Via %q, want TLS", via)
	}
	if c := header(inv, "Contact"); !strings.Contains(c, "transport=tls") || !strings.Contains(c, fmt.Sprintf(":%d", s.localPort("tls"))) {
		t.Errorf("INVITE Contact %q does not name the TLS listener", c)
	}
	rtp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		rtp.LocalAddr().(*net.UDPAddr).Port)
	p.send(fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=phone1\r\nCall-ID: %s\r\nCSeq: %s\r\nContact: %s\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		header(inv, "Via"), header(inv, "From"), header(inv, "To"), header(inv, "Call-ID"), header(inv, "CSeq"), contact, len(sdp), sdp))
	ack, err := p.read(5 * time.Second)
	if err != nil || !strings.HasPrefix(ack, "ACK ") {
		t.Fatalf("no ACK on the connection: %q %v", ack, err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	go r.c.Hangup(ctx)
	bye, err := p.read(5 * time.Second)
	if err != nil || !strings.HasPrefix(bye, "BYE ") {
		t.Fatalf("no BYE on the connection: %q %v", bye, err)
	}
	p.send(fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		header(bye, "Via"), header(bye, "From"), header(bye, "To"), header(bye, "Call-ID"), header(bye, "CSeq")))
	select {
	case <-r.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("call did not end")
	}
	// The phone's connection outlives the call: it is how it is reached.
	time.Sleep(200 * time.Millisecond)
	if err := p.options("after-call"); err != nil {
		t.Fatalf("the phone's connection after the call: %v", err)
	}
}

// tlsCarrier starts a voxgate acting as a carrier with a TLS listener whose
// certificate carries the given names.
func tlsCarrier(t *testing.T, ca *testCA, names ...string) (*Server, string, *echoHandler) {
	t.Helper()
	cert, key := ca.issue(t, t.TempDir(), "carrier", names...)
	echo := &echoHandler{}
	car, err := NewServer(Config{
		Listen:  []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}, {Transport: "tls", Addr: "127.0.0.1:0"}},
		TLSCert: cert, TLSKey: key, RTPPorts: "33100-33199", MinExpires: 1, Domain: "carrier.test", Codecs: []string{"pcmu", "pcma"},
	}, WithLogger(quietLogger()), WithUsers(NewUsers(User{Name: "4930123", Password: "trunk-pw"})), WithHandler(echo))
	if err != nil {
		t.Fatal(err)
	}
	if err := car.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { car.Close() })
	return car, car.Addrs()[1].String(), echo
}

// A trunk over TLS to a carrier with a certificate from a private CA
// registers over TLS and carries a call with audio both ways.
func TestTrunkOverTLS(t *testing.T) {
	ca := newTestCA(t)
	car, addr, echo := tlsCarrier(t, ca, "sip.carrier.test")
	gwEcho := &echoHandler{}
	gw, _ := testServer(t, func(cfg *Config) {
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: "sips:" + addr, TLSServerName: "sip.carrier.test", TLSCAFile: ca.file,
			Username: "4930123", Password: "trunk-pw", Expires: 60, RetryMax: 200 * time.Millisecond, InboundCIDRs: []string{"127.0.0.1"}}}
	}, WithHandler(gwEcho))
	if !waitBinding(t, car, "4930123", 5*time.Second) {
		t.Fatalf("no registration over TLS: %+v", gw.TrunkStates())
	}
	if b := car.Bindings("4930123")[0]; !strings.EqualFold(b.Transport, "tls") || !strings.Contains(b.Contact, "transport=tls") {
		t.Fatalf("binding %+v, want over TLS", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gw.DialTrunk(ctx, "carrier", "+15551230001", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := toneThrough(t, c, 700, 1500*time.Millisecond)
	if secs := audio.ToneSeconds(got, 8000, 700, 0.2); secs < 0.8 {
		t.Fatalf("echo through the TLS trunk: %.2fs of tone", secs)
	}
	calls, _ := echo.snapshot()
	c.Hangup(ctx)
	select {
	case <-calls[0].Done():
	case <-time.After(3 * time.Second):
		t.Fatal("carrier's side did not end after our BYE")
	}

	// The carrier calls in down the registration's connection (voxgate
	// has no TLS listener at all here).
	in, err := car.DialBinding(ctx, car.Bindings("4930123")[0], "+4930999")
	if err != nil {
		t.Fatalf("carrier's call in over the TLS registration: %v", err)
	}
	got = toneThrough(t, in, 500, 1500*time.Millisecond)
	if secs := audio.ToneSeconds(got, 8000, 500, 0.2); secs < 0.8 {
		t.Fatalf("echo of the call in over TLS: %.2fs of tone", secs)
	}
	gwCalls, _ := gwEcho.snapshot()
	if len(gwCalls) != 1 || gwCalls[0].Origin().Kind != "trunk" {
		t.Fatalf("voxgate saw %d calls in", len(gwCalls))
	}
	in.Hangup(ctx)
	select {
	case <-gwCalls[0].Done():
	case <-time.After(3 * time.Second):
		t.Fatal("voxgate's side of the call in did not end after the carrier's BYE")
	}
}

// A carrier whose certificate has the wrong name, or comes from a CA not
// trusted, is refused: the registration fails with a clear last_error.
func TestTrunkTLSBadCertificate(t *testing.T) {
	ca := newTestCA(t)
	car, addr, _ := tlsCarrier(t, ca, "sip.carrier.test")
	for _, tc := range []struct {
		name string
		trk  TrunkConfig
		want string
	}{
		{"wrong name", TrunkConfig{TLSServerName: "other.example", TLSCAFile: ca.file}, "certificate is valid for sip.carrier.test, not other.example"},
		{"unknown CA", TrunkConfig{TLSServerName: "sip.carrier.test"}, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trk := tc.trk
			trk.Name, trk.Registrar, trk.Transport = "carrier", addr, "tls"
			trk.Username, trk.Password, trk.Expires, trk.RetryMax = "4930123", "trunk-pw", 60, time.Second
			gw, _ := testServer(t, func(cfg *Config) { cfg.Trunks = []TrunkConfig{trk} })
			deadline := time.Now().Add(5 * time.Second)
			for gw.TrunkStates()[0].Attempts < 1 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			st := gw.TrunkStates()[0]
			if st.Registered || !strings.Contains(st.LastError, tc.want) {
				t.Fatalf("state %+v, want a failure naming %q", st, tc.want)
			}
			if len(car.Bindings("4930123")) != 0 {
				t.Fatal("registered past a bad certificate")
			}
		})
	}
}

func TestRegistrarHost(t *testing.T) {
	for in, want := range map[string]string{
		"sip:a.example:5061;transport=tls": "a.example:5061 tls",
		"sips:a.example":                   "a.example tls",
		"sips:a.example;transport=tcp":     "a.example tls",
		"sip:a.example;transport=TCP":      "a.example tcp",
		"10.0.0.1:5060":                    "10.0.0.1:5060 udp",
		"sip:a.example;transport=sctp":     "a.example;transport=sctp unknown:sctp",
	} {
		h, tp := registrarHost(in)
		if got := h + " " + tp; got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func TestTrunkTLSConfig(t *testing.T) {
	for _, tc := range []struct {
		trk   TrunkConfig
		field string // "" for valid
		host  string
		tp    string
	}{
		{TrunkConfig{Registrar: "sips:carrier.example"}, "", "carrier.example:5061", "tls"},
		{TrunkConfig{Registrar: "sip:carrier.example;transport=tls"}, "", "carrier.example:5061", "tls"},
		{TrunkConfig{Registrar: "carrier.example", Transport: "TLS", TLSServerName: "x", TLSCAFile: "ca.pem"}, "", "carrier.example:5061", "tls"},
		{TrunkConfig{Registrar: "sips:carrier.example", Transport: "udp"}, "trunks[0].transport", "", ""},
		{TrunkConfig{Registrar: "carrier.example", TLSCAFile: "ca.pem"}, "trunks[0].tls_server_name", "", ""},
		{TrunkConfig{Registrar: "sip:carrier.example;transport=sctp"}, "trunks[0].registrar", "", ""},
	} {
		trk := tc.trk
		trk.Name = "c"
		cfg := Config{Trunks: []TrunkConfig{trk}}
		err := cfg.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.trk, err)
			} else if got := cfg.Trunks[0]; got.host != tc.host || got.Transport != tc.tp {
				t.Errorf("%+v: host %q transport %q", tc.trk, got.host, got.Transport)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", tc.trk, err, tc.field)
		}
	}
	cfg := Config{Trunks: []TrunkConfig{
		{Name: "a", Registrar: "sips:carrier.example", TLSCAFile: "a.pem"},
		{Name: "b", Registrar: "sips:carrier.example:5062", TLSCAFile: "b.pem"},
	}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "different tls_server_name or tls_ca_file") {
		t.Errorf("two TLS trunks to one host checked differently: %v", err)
	}
}

// A call a phone places over TLS from behind NAT (its Contact port does
// not listen) is answered with a Contact naming the TLS listener, and
// voxgate's BYE goes down the phone's connection.
func TestTLSInboundCallByeOverItsConnection(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "voxgate")
	handler := HandlerFunc(func(ctx context.Context, c *Call) {
		if c.Answer(ctx) == nil {
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.Hangup(hctx)
		}
	})
	s, addr := tlsServer(t, cert, key, nil, WithHandler(handler))
	p := answeredTLSCall(t, s, addr, ca.pool())
	bye, err := p.read(5 * time.Second)
	if err != nil || !strings.HasPrefix(bye, "BYE ") {
		t.Fatalf("no BYE on the phone's connection: %q %v", bye, err)
	}
	p.send(fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		header(bye, "Via"), header(bye, "From"), header(bye, "To"), header(bye, "Call-ID"), header(bye, "CSeq")))
	deadline := time.Now().Add(5 * time.Second)
	for s.Calls() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s.Calls() != 0 {
		t.Fatal("the call did not end")
	}
}

// answeredTLSCall has a phone whose Contact port does not listen call
// voxgate's echo over TLS, authenticate, and take the 200 and ACK it; it
// returns the phone, its connection still open.
func answeredTLSCall(t *testing.T, s *Server, addr string, pool *x509.CertPool) *tlsPhone {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := dialTLSPhone(t, addr, pool)
	rtp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		rtp.LocalAddr().(*net.UDPAddr).Port)
	invite := func(cseq int, auth string) string {
		return fmt.Sprintf("INVITE sip:9196@voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bKinv%d\r\nFrom: <sip:alice@voxgate>;tag=in1\r\n"+
			"To: <sip:9196@voxgate>\r\nCall-ID: tlsin\r\nCSeq: %d INVITE\r\nContact: <sip:alice@127.0.0.1:%d;transport=tls>\r\nMax-Forwards: 70\r\n%s"+
			"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", dead, cseq, cseq, dead, auth, len(sdp), sdp)
	}
	final := func() string {
		for {
			res, err := p.read(5 * time.Second)
			if err != nil {
				t.Fatalf("waiting for an answer: %q %v", res, err)
			}
			if !strings.HasPrefix(res, "SIP/2.0 1") {
				return res
			}
		}
	}
	p.send(invite(1, ""))
	res := final()
	if !strings.HasPrefix(res, "SIP/2.0 407") {
		t.Fatalf("first INVITE: %q", res)
	}
	p.send(fmt.Sprintf("ACK sip:9196@voxgate SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bKinv1\r\nFrom: <sip:alice@voxgate>;tag=in1\r\n"+
		"To: %s\r\nCall-ID: tlsin\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", dead, header(res, "To")))
	authz := digestHeader(t, header(res, "Proxy-Authenticate"), "INVITE", "sip:9196@voxgate", "alice", "alice-secret")
	p.send(invite(2, "Proxy-Authorization: "+authz+"\r\n"))
	ok := final()
	if !strings.HasPrefix(ok, "SIP/2.0 200") {
		t.Fatalf("INVITE with credentials: %q", ok)
	}
	if c := header(ok, "Contact"); !strings.Contains(c, "transport=tls") || !strings.Contains(c, fmt.Sprintf(":%d", s.localPort("tls"))) {
		t.Errorf("200 Contact %q does not name the TLS listener", c)
	}
	target := strings.Trim(header(ok, "Contact"), "<>")
	p.send(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bKack2\r\nFrom: <sip:alice@voxgate>;tag=in1\r\n"+
		"To: %s\r\nCall-ID: tlsin\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", target, dead, header(ok, "To")))
	return p
}

// voxgate refreshes the session (session timers; the phone does not
// support them, so voxgate is the refresher) of a call a phone placed over
// TLS down the phone's connection, as it does its BYE: its Contact port
// does not listen. The phone answers the refresh 481; voxgate then ends the
// call with a BYE on the same connection.
func TestTLSInboundCallRefreshOverItsConnection(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "voxgate")
	handler := HandlerFunc(func(ctx context.Context, c *Call) {
		if c.Answer(ctx) == nil {
			<-c.Done()
		}
	})
	s, addr := tlsServer(t, cert, key, nil, WithHandler(handler), WithTimerSettings(TimerSettings{Expires: 4 * time.Second, MinSE: 2 * time.Second}))
	p := answeredTLSCall(t, s, addr, ca.pool())
	reinvite, err := p.read(10 * time.Second) // the refresh, at half the 4 s interval
	if err != nil || !strings.HasPrefix(reinvite, "INVITE ") {
		t.Fatalf("no session refresh on the phone's connection: %q %v", reinvite, err)
	}
	p.send(fmt.Sprintf("SIP/2.0 481 Call Does Not Exist\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		header(reinvite, "Via"), header(reinvite, "From"), header(reinvite, "To"), header(reinvite, "Call-ID"), header(reinvite, "CSeq")))
	for {
		msg, err := p.read(10 * time.Second)
		if err != nil {
			t.Fatalf("no BYE on the phone's connection after the refused refresh: %v", err)
		}
		if strings.HasPrefix(msg, "BYE ") {
			break
		}
	}
}
