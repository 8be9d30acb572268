// Package sip is voxgate's SIP side, built on github.com/emiago/sipgo: the
// listeners, the registrar and its location store, digest authentication with
// a brute-force guard, registration to carriers' trunks, INVITE dialogs as
// server and client, SDP offer/answer (pion/sdp), RTP/RTCP sessions and DTMF.
// A *Call is a media leg; what happens to it is decided by a Handler.
package sip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/internal/guard"
)

// Listener is one SIP listening socket.
type Listener struct {
	Transport string `yaml:"transport"` // udp, tcp or tls
	Addr      string `yaml:"addr"`      // host:port
}

// Config configures the SIP side. Validate fills defaults.
type Config struct {
	Listen []Listener `yaml:"listen"`
	// TLS certificate and key (PEM files) for tls listeners.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSHandshakeTimeout cuts off a TLS peer that has not finished its
	// handshake in this time (default 10s).
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	// Advertise is the address written into SDP and Contact headers, for a
	// gateway behind 1:1 NAT. Empty: the listener's own address.
	Advertise string `yaml:"advertise"`
	// Domain is voxgate's SIP domain and digest realm.
	Domain string `yaml:"domain"`
	// RTPPorts is the range of UDP ports for media, "min-max" (RTP on even
	// ports, RTCP on the next odd one).
	RTPPorts string `yaml:"rtp_ports"`
	// MinExpires and MaxExpires bound registrations (seconds); below the
	// minimum a REGISTER gets 423, above the maximum it is shortened.
	MinExpires     int `yaml:"min_expires"`
	MaxExpires     int `yaml:"max_expires"`
	DefaultExpires int `yaml:"default_expires"`
	// MaxTransactions bounds the server transactions alive at once (default
	// 50000, about 250 MB at most); a request over it is refused with 503
	// and Retry-After. A transaction over UDP lives 32 s after its answer.
	MaxTransactions int `yaml:"max_transactions"`
	// MaxContacts bounds the contacts one user may register (default 10);
	// a REGISTER that would exceed it is refused 403.
	MaxContacts int `yaml:"max_contacts"`
	// NonceTTL is how long a digest nonce stays valid; after that a request
	// with it is answered 401 with stale=true.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// DigestAlgorithms are offered in this order in challenges: MD5, SHA-256.
	// MD5 comes first by default because some deployed phones (baresip 1.0's
	// libre among them) give up on a first challenge they cannot compute
	// instead of taking the next one.
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// Guard limits failed authentication per source address and user, for
	// SIP and the web side alike.
	Guard GuardConfig `yaml:"guard"`
	// Codecs offered and accepted, in order of preference: opus, g722, pcmu,
	// pcma (any name in the audio codec registry, in any case).
	Codecs []string `yaml:"codecs"`
	// ComfortNoise (default on) offers and accepts RFC 3389 comfort noise
	// (CN/8000) with G.711 and G.722: a peer that takes it is sent one
	// comfort noise packet every 400 ms while it hears silence, instead of
	// 50 packets of encoded silence a second.
	ComfortNoise *bool `yaml:"comfort_noise"`
	// Trunks are carriers voxgate registers to and places calls through.
	Trunks []TrunkConfig `yaml:"trunks"`
	// Stream bounds connections over TCP and TLS.
	Stream StreamConfig `yaml:"stream"`
	// SessionTimers are RFC 4028 session timers (timers.go).
	SessionTimers SessionTimerConfig `yaml:"session_timers"`
	// SRTP is the default media encryption policy (off, offer, require) of
	// calls whose trunk or user sets none; default off.
	SRTP SRTPPolicy `yaml:"srtp"`
	// SRTPSuites are the SDES crypto suites voxgate offers, in order
	// (default AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32); any offered
	// suite it knows is answered whatever this says.
	SRTPSuites []string `yaml:"srtp_suites"`
	// QualifyContacts is how often every registered contact is sent
	// OPTIONS (qualify.go); 0, the default, turns it off.
	QualifyContacts time.Duration `yaml:"qualify_contacts"`
	// QualifyMisses unanswered probes in a row mark a trunk down or a
	// contact unreachable (default 2).
	QualifyMisses int `yaml:"qualify_misses"`

	rtpMin, rtpMax int
}

// GuardConfig tunes the brute-force guard, shared with the web side.
type GuardConfig = guard.Config

// TrunkConfig describes one carrier.
type TrunkConfig struct {
	Name string `yaml:"name"`
	// Registrar is the carrier's SIP URI or host:port, e.g. sip:carrier.example:5060.
	Registrar string `yaml:"registrar"`
	Transport string `yaml:"transport"` // udp (default), tcp or tls (also implied by sips: or ;transport=tls)
	// TLSServerName is the name the carrier's certificate must carry
	// (default: the registrar's host); TLSCAFile a PEM file of CAs to trust
	// for it instead of the system's (see sip/tls.go).
	TLSServerName string `yaml:"tls_server_name"`
	TLSCAFile     string `yaml:"tls_ca_file"`
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	// Register: voxgate keeps a registration at the carrier (default true when a
	// username is set).
	Register *bool `yaml:"register"`
	Expires  int   `yaml:"expires"`
	// RetryMax bounds the back-off between failed registration attempts.
	RetryMax time.Duration `yaml:"retry_max"`
	// Inbound calls are recognised as this trunk's when they come from one of
	// these networks, or authenticate with InboundUser/InboundPassword.
	InboundCIDRs    []string `yaml:"inbound_cidrs"`
	InboundUser     string   `yaml:"inbound_user"`
	InboundPassword string   `yaml:"inbound_password"`
	// SRTP is the trunk's media encryption policy ("": sip.srtp).
	SRTP SRTPPolicy `yaml:"srtp"`
	// Qualify is how often the trunk is sent OPTIONS (default 60s; 0: off).
	Qualify *time.Duration `yaml:"qualify"`
	// CallerID are the trunk's caller-ID rules (callerid.go).
	CallerID CallerIDConfig `yaml:"caller_id"`

	prefixes []netip.Prefix
	host     string // host:port of the registrar
}

// ShouldRegister reports whether voxgate keeps a registration at the trunk.
func (t *TrunkConfig) ShouldRegister() bool {
	if t.Register != nil {
		return *t.Register
	}
	return t.Username != ""
}

var errRequired = errors.New("is required")

// Validate fills defaults and rejects contradictions. Its errors are
// *config.Error naming the field below the sip section ("listen[1].addr").
func (c *Config) Validate() error {
	c.Stream.defaults()
	if c.MaxTransactions == 0 {
		c.MaxTransactions = 50000
	}
	if c.MaxContacts == 0 {
		c.MaxContacts = 10
	}
	if len(c.Listen) == 0 {
		c.Listen = []Listener{{Transport: "udp", Addr: "127.0.0.1:5060"}, {Transport: "tcp", Addr: "127.0.0.1:5060"}}
	}
	for i := range c.Listen {
		l := &c.Listen[i]
		f := fmt.Sprintf("listen[%d]", i)
		l.Transport = strings.ToLower(l.Transport)
		switch l.Transport {
		case "udp", "tcp":
		case "tls":
			if c.TLSCert == "" || c.TLSKey == "" {
				return config.Fieldf(f+".transport", "tls needs tls_cert and tls_key")
			}
		default:
			return config.Fieldf(f+".transport", "unknown transport %q (want udp, tcp or tls)", l.Transport)
		}
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return config.Fieldf(f+".addr", "%q is not host:port", l.Addr)
		}
	}
	if c.Advertise != "" {
		if _, err := netip.ParseAddr(c.Advertise); err != nil {
			return config.Fieldf("advertise", "%q is not an IP address", c.Advertise)
		}
	}
	if c.Domain == "" {
		c.Domain = "voxgate"
	}
	if c.RTPPorts == "" {
		c.RTPPorts = "20000-29999"
	}
	lo, hi, ok := strings.Cut(c.RTPPorts, "-")
	pmin, err1 := strconv.Atoi(strings.TrimSpace(lo))
	pmax, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || pmin < 1024 || pmax > 65535 || pmax-pmin < 3 {
		return config.Fieldf("rtp_ports", "%q is not a range like 20000-29999 within 1024-65535", c.RTPPorts)
	}
	c.rtpMin, c.rtpMax = pmin, pmax
	if c.MinExpires == 0 {
		c.MinExpires = 60
	}
	if c.MaxExpires == 0 {
		c.MaxExpires = 3600
	}
	if c.TLSHandshakeTimeout == 0 {
		c.TLSHandshakeTimeout = 10 * time.Second
	}
	if c.DefaultExpires == 0 {
		c.DefaultExpires = 3600
	}
	if c.MinExpires < 1 || c.MaxExpires < c.MinExpires {
		return config.Fieldf("max_expires", "must be at least min_expires (%d)", c.MinExpires)
	}
	c.DefaultExpires = max(c.MinExpires, min(c.DefaultExpires, c.MaxExpires))
	if c.NonceTTL == 0 {
		c.NonceTTL = 5 * time.Minute
	}
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = []string{"MD5"}
	}
	for i, a := range c.DigestAlgorithms {
		a = strings.ToUpper(a)
		if a != "MD5" && a != "SHA-256" {
			return config.Fieldf(fmt.Sprintf("digest_algorithms[%d]", i), "unknown algorithm %q (want MD5 or SHA-256)", a)
		}
		c.DigestAlgorithms[i] = a
	}
	c.Guard.Defaults()
	if err := c.Guard.Check(); err != nil {
		return config.FieldErr("guard.ban_after", err)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []string{"opus", "g722", "pcmu", "pcma"}
	}
	for i, name := range c.Codecs {
		if _, ok := codecByName(name); !ok {
			return config.Fieldf(fmt.Sprintf("codecs[%d]", i), "unknown codec %q (want %s)", name, audio.CodecNames())
		}
	}
	if err := checkSRTP("srtp", &c.SRTP); err != nil {
		return err
	}
	if err := checkSuites(&c.SRTPSuites); err != nil {
		return err
	}
	if err := c.SessionTimers.validate(); err != nil {
		return config.Within("session_timers", err)
	}
	names := map[string]bool{}
	for i := range c.Trunks {
		if err := c.Trunks[i].validate(); err != nil {
			return config.Within(fmt.Sprintf("trunks[%d]", i), err)
		}
		if names[c.Trunks[i].Name] {
			return config.Fieldf(fmt.Sprintf("trunks[%d].name", i), "duplicate trunk %q", c.Trunks[i].Name)
		}
		names[c.Trunks[i].Name] = true
	}
	if err := checkTrunkTLS(c.Trunks); err != nil {
		return err
	}
	return c.validateQualify()
}

func (t *TrunkConfig) validate() error {
	if t.Name == "" {
		return config.Fieldf("name", "%w", errRequired)
	}
	if t.Registrar == "" {
		return config.Fieldf("registrar", "%w", errRequired)
	}
	host, tp := registrarHost(t.Registrar)
	if strings.HasPrefix(tp, "unknown:") {
		return config.Fieldf("registrar", "%q names an unknown transport (want udp, tcp or tls)", t.Registrar)
	}
	t.Transport = strings.ToLower(t.Transport)
	if t.Transport == "" {
		t.Transport = tp
	}
	if tp == "tls" && t.Transport != "tls" {
		return config.Fieldf("transport", "%q but the registrar %q asks for tls", t.Transport, t.Registrar)
	}
	if t.Transport != "udp" && t.Transport != "tcp" && t.Transport != "tls" {
		return config.Fieldf("transport", "unknown transport %q (want udp, tcp or tls)", t.Transport)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		port := "5060"
		if t.Transport == "tls" {
			port = "5061"
		}
		host = net.JoinHostPort(host, port)
	}
	if _, _, err := net.SplitHostPort(host); err != nil || strings.ContainsAny(host, "@;") {
		return config.Fieldf("registrar", "%q is not sip:host[:port]", t.Registrar)
	}
	t.host = host
	if t.Transport != "tls" && (t.TLSServerName != "" || t.TLSCAFile != "") {
		return config.Fieldf("tls_server_name", "tls_server_name and tls_ca_file need transport: tls")
	}
	if t.ShouldRegister() && (t.Username == "" || t.Password == "") {
		return config.Fieldf("username", "registering needs username and password")
	}
	if t.Expires == 0 {
		t.Expires = 600
	}
	if t.Expires < 2 {
		return config.Fieldf("expires", "must be at least 2 seconds")
	}
	if t.RetryMax == 0 {
		t.RetryMax = time.Minute
	}
	for i, s := range t.InboundCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return config.Fieldf(fmt.Sprintf("inbound_cidrs[%d]", i), "%q is not a CIDR or address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t.prefixes = append(t.prefixes, p)
	}
	if err := checkSRTP("srtp", &t.SRTP); err != nil {
		return err
	}
	if (t.InboundUser == "") != (t.InboundPassword == "") {
		return config.Fieldf("inbound_user", "inbound_user and inbound_password go together")
	}
	if err := t.CallerID.validate(); err != nil {
		return config.Within("caller_id", err)
	}
	return nil
}

// comfortNoise reports whether comfort noise is offered and accepted.
func (c *Config) comfortNoise() bool { return c.ComfortNoise == nil || *c.ComfortNoise }
