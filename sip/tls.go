package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
)

// certStore holds the certificate the TLS listeners present. New handshakes
// take it through tls.Config.GetCertificate, so a reload reaches them while
// connections already up keep theirs.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func newCertStore(certFile, keyFile string) (*certStore, error) {
	cs := &certStore{certFile: certFile, keyFile: keyFile}
	if err := cs.load(); err != nil {
		return nil, err
	}
	return cs, nil
}

// load reads the certificate and key; on any error the old pair stays.
func (cs *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(cs.certFile, cs.keyFile)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	if time.Now().After(leaf.NotAfter) {
		return fmt.Errorf("certificate %s expired on %s", cs.certFile, leaf.NotAfter.Format(time.DateOnly))
	}
	cert.Leaf = leaf
	cs.cur.Store(&cert)
	return nil
}

func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cs.cur.Load(), nil }

// ReloadTLS reads tls_cert and tls_key again (for SIGHUP). New TLS
// handshakes get the new certificate; connections already up keep theirs.
// A pair that does not load (missing, not matching, expired) leaves the old
// one in use and is returned as the error.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	if err := s.certs.load(); err != nil {
		s.log.Error("sip: TLS certificate not reloaded; keeping the old one", "cert", s.certs.certFile, "key", s.certs.keyFile, "error", err)
		return fmt.Errorf("tls_cert: %w", err)
	}
	leaf := s.certs.cur.Load().Leaf
	s.log.Info("sip: TLS certificate reloaded", "cert", s.certs.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	return nil
}

// trunkTLS is how the certificate of one TLS peer host is checked.
type trunkTLS struct {
	serverName string         // the name the certificate must carry
	roots      *x509.CertPool // nil: the system's roots
}

// loadCA reads a PEM file of CA certificates.
func loadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// clientTLSConfig is the configuration every outgoing TLS connection uses
// (sipgo has one per user agent). Go's own check is replaced by
// VerifyConnection, which checks the chain and name as the trunk to that
// host asks (its tls_server_name and tls_ca_file), or against the system
// roots and the host dialled for any other destination. Nothing is ever
// accepted unverified.
func (s *Server) clientTLSConfig() (*tls.Config, error) {
	peers := map[string]trunkTLS{}
	for i := range s.cfg.Trunks {
		tc := &s.cfg.Trunks[i]
		if tc.Transport != "tls" {
			continue
		}
		host, _, _ := net.SplitHostPort(tc.host)
		p := trunkTLS{serverName: tc.TLSServerName}
		if p.serverName == "" {
			p.serverName = host
		}
		if tc.TLSCAFile != "" {
			roots, err := loadCA(tc.TLSCAFile)
			if err != nil {
				return nil, config.Within(fmt.Sprintf("trunks[%d]", i), config.FieldErr("tls_ca_file", err))
			}
			p.roots = roots
		}
		peers[strings.ToLower(host)] = p
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, never skipped
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.ServerName != "" { // a host name: its trunk's check, or the system's roots
				p, ok := peers[strings.ToLower(cs.ServerName)]
				if !ok {
					p = trunkTLS{serverName: cs.ServerName}
				}
				return verifyPeer(cs, p)
			}
			// An IP address is not sent in SNI, so the address dialled is
			// unknown here: the certificate must pass the check of a trunk
			// whose registrar is an IP address.
			err := errors.New("tls: no trunk to an IP address to check this peer's certificate against")
			for host, p := range peers {
				if net.ParseIP(host) == nil {
					continue
				}
				if err = verifyPeer(cs, p); err == nil {
					return nil
				}
			}
			return err
		},
	}
	if s.certs != nil { // a carrier that asks for a client certificate gets ours
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.certs.cur.Load(), nil }
	}
	return conf, nil
}

// verifyPeer checks a server's chain against p's roots and its name.
func verifyPeer(cs tls.ConnectionState, p trunkTLS) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: p.serverName, Roots: p.roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls: certificate of %s not trusted: %w", p.serverName, err)
	}
	return nil
}

// tlsListener accepts TLS connections whose handshake is bounded in time
// and logged when it fails (see handshakeConn).
type tlsListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration
	log     *slog.Logger
	fails   *atomic.Int64
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.conf), l: l}, nil
}

// handshakeConn finishes the TLS handshake on the first read, within the
// handshake timeout: a peer that sends garbage, sends nothing or fails the
// handshake is logged with its address and the reason, and cut off.
// Only its own connection is affected.
type handshakeConn struct {
	*tls.Conn
	l    *tlsListener
	once sync.Once
	err  error

	mu       sync.Mutex
	deadline time.Time // the read deadline asked for, applied after the handshake
}

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

func (c *handshakeConn) Write(p []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Write(p)
}

func (c *handshakeConn) handshake() {
	ctx, cancel := context.WithTimeout(context.Background(), c.l.timeout)
	defer cancel()
	err := c.Conn.HandshakeContext(ctx)
	if err == nil {
		c.mu.Lock()
		_ = c.Conn.SetReadDeadline(c.deadline)
		c.mu.Unlock()
		return
	}
	reason := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		reason = fmt.Sprintf("no TLS handshake within %s", c.l.timeout)
	}
	c.l.fails.Add(1)
	c.l.log.Warn("sip: TLS handshake failed; connection closed", "peer", c.RemoteAddr().String(), "reason", reason)
	_ = c.Conn.NetConn().Close()
	c.err = fmt.Errorf("tls handshake with %s: %w", c.RemoteAddr(), net.ErrClosed)
}

// registrarHost splits a trunk's registrar (sip:host[:port], sips:...,
// host[:port], with an optional ;transport=...) into host[:port] and the
// transport it implies ("tls" for sips: or ;transport=tls, "tcp" for
// ;transport=tcp, else "udp").
func registrarHost(reg string) (host, transport string) {
	transport = "udp"
	lower := strings.ToLower(reg)
	switch {
	case strings.HasPrefix(lower, "sips:"):
		reg, transport = reg[5:], "tls"
	case strings.HasPrefix(lower, "sip:"):
		reg = reg[4:]
	}
	host, params, _ := strings.Cut(reg, ";")
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "transport") {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case "tls", "tcp", "udp":
				if transport != "tls" {
					transport = v
				}
			default:
				return reg, "unknown:" + v
			}
		}
	}
	return host, transport
}

// checkTrunkTLS refuses two TLS trunks to one host that check its
// certificate differently: the check is chosen by the host dialled.
func checkTrunkTLS(trunks []TrunkConfig) error {
	seen := map[string]int{}
	for i := range trunks {
		t := &trunks[i]
		if t.Transport != "tls" {
			continue
		}
		h, _, _ := net.SplitHostPort(t.host)
		h = strings.ToLower(h)
		if j, ok := seen[h]; ok && (trunks[j].TLSServerName != t.TLSServerName || trunks[j].TLSCAFile != t.TLSCAFile) {
			return config.Fieldf(fmt.Sprintf("trunks[%d].tls_server_name", i), "trunk %q and trunk %q reach host %s over TLS with different tls_server_name or tls_ca_file", trunks[j].Name, t.Name, h)
		}
		seen[h] = i
	}
	return nil
}

// tlsListener wraps a TCP listener for the TLS listeners.
func (s *Server) tlsListener(ln net.Listener) net.Listener {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.get}
	return &tlsListener{Listener: ln, conf: conf, timeout: s.cfg.TLSHandshakeTimeout, log: s.log, fails: &s.tlsFails}
}

// TLSHandshakeFailures is the number of TLS peers cut off in or before the
// handshake (garbage, silence, a failed handshake) since start.
func (s *Server) TLSHandshakeFailures() int64 { return s.tlsFails.Load() }

// clientFor returns the client that sends requests over transport.
func (s *Server) clientFor(transport string) *sipgo.Client {
	if strings.EqualFold(transport, "tls") || isWS(transport) {
		return s.tlsClient
	}
	return s.client
}

// overConnection makes a call to a binding registered over TLS go out the
// way the REGISTER came (RFC 5626-style connection reuse): over TLS, to
// the address it came from, where sipgo finds the phone's connection. The
// Contact's own address is often unreachable behind NAT.
func overConnection(uri *sip.Uri, b Binding) {
	if !strings.EqualFold(b.Transport, "tls") && !isWS(b.Transport) {
		return
	}
	if uri.UriParams == nil {
		uri.UriParams = sip.NewParams()
	}
	uri.UriParams.Add("transport", strings.ToLower(b.Transport)) // over WebSocket: "ws" (ws.go)
}

// tlsDialogUA is the dialog side of calls over TLS: requests within the
// dialog go to where the peer's answer came from (its connection), not to
// its Contact. Our Contact names the TLS listener; without one (a trunk
// over TLS needs none) it stays the default, which the peer can reach.
func (s *Server) tlsDialogUA() sipgo.DialogUA {
	return sipgo.DialogUA{Client: s.tlsClient, ContactHDR: s.tlsContactHeader(), RewriteContact: true}
}

func (s *Server) tlsContactHeader() sip.ContactHeader {
	p := s.localPort("tls")
	if p == 0 {
		return s.contact
	}
	contact := sip.ContactHeader{Address: s.contact.Address}
	contact.Address.Port = p
	contact.Address.UriParams = sip.NewParams()
	contact.Address.UriParams.Add("transport", "tls")
	return contact
}

// tlsContact gives the answer to a request that came over TLS a Contact
// naming the TLS listener (when there is one), so the peer's requests in
// the dialog come back over TLS.
func (s *Server) tlsContact(res *sip.Response, req *sip.Request) {
	if !strings.EqualFold(req.Transport(), "tls") || res.Contact() != nil || s.localPort("tls") == 0 {
		return
	}
	c := s.tlsContactHeader()
	res.AppendHeader(&c)
}

// byeInbound ends a call placed to us, with a Reason header when reason is
// set. Over TLS the BYE goes down the connection the INVITE came on (the
// caller's Contact may be unreachable behind NAT; RFC 5626-style reuse);
// otherwise to the caller's Contact (target) as sipgo sends it.
func byeInbound(ctx context.Context, dlg *sipgo.DialogServerSession, target sip.Uri, reason string) error {
	if reason == "" && !overCallersConn(dlg.InviteRequest) {
		return dlg.Bye(ctx)
	}
	bye := sip.NewRequest(sip.BYE, target)
	routeInDialog(bye, dlg.InviteRequest)
	if reason != "" {
		bye.AppendHeader(sip.NewHeader("Reason", reason))
	}
	return dlg.WriteBye(ctx, bye)
}

// overCallersConn reports whether requests in the dialog of inv, a call
// placed to us, go down the caller's TLS connection: it came over TLS
// straight from the caller (no Record-Route) with a Contact.
func overCallersConn(inv *sip.Request) bool {
	return (strings.EqualFold(inv.Transport(), "tls") || isWS(inv.Transport())) && len(inv.GetHeaders("Record-Route")) == 0 && inv.Contact() != nil
}

// routeInDialog sends req, a request of ours in the dialog of inv (a call
// placed to us), down the caller's TLS connection when it came over one
// (its Contact may be unreachable behind NAT), else over inv's transport to
// the request's target.
func routeInDialog(req, inv *sip.Request) {
	if overCallersConn(inv) {
		req.SetTransport(inv.Transport()) // TLS, or WS (a browser's WebSocket, ws.go)
		req.SetDestination(inv.Source())
		return
	}
	req.SetTransport(inv.Transport())
}

// ackOverCallersConn sends ack, the ACK of a 2xx to inv's re-INVITE req
// (sent in the dialog of inv, a call placed to us), down the caller's
// connection. sipgo's dialog WriteRequest would bind a new connection to
// our listening port (bind: address already in use over TLS) instead of
// finding the caller's, so the ACK takes the dialog's headers from req and
// goes out with only a Via added.
func (s *Server) ackOverCallersConn(ack, req, inv *sip.Request) error {
	routeInDialog(ack, inv)
	for _, name := range []string{"From", "To", "Call-ID", "Max-Forwards", "Route"} {
		sip.CopyHeaders(name, req, ack)
	}
	ack.SetBody(nil)
	return s.client.WriteRequest(ack, sipgo.ClientRequestAddVia)
}
