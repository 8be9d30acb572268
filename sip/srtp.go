package sip

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"

	"github.com/voxgate/voxgate/internal/config"
)

// SRTPPolicy says whether a SIP leg's media is encrypted with SRTP, keyed
// by SDES (RFC 4568: a=crypto lines in the SDP).
type SRTPPolicy string

// SRTP policies.
const (
	// SRTPOff: plain RTP only; an RTP/SAVP offer is refused 488.
	SRTPOff SRTPPolicy = "off"
	// SRTPOffer: SRTP when the peer offers a=crypto (RTP/AVP or RTP/SAVP),
	// else plain; voxgate's own offers are RTP/AVP with a=crypto (best effort).
	SRTPOffer SRTPPolicy = "offer"
	// SRTPRequire: SRTP or no call; a plain offer is refused 488 and
	// voxgate's own offers are RTP/SAVP.
	SRTPRequire SRTPPolicy = "require"
)

// checkSRTP validates a policy field ("" stays "": the default applies).
func checkSRTP(field string, p *SRTPPolicy) error {
	v, err := ParseSRTPPolicy(string(*p))
	if err != nil {
		return config.FieldErr(field, err)
	}
	*p = v
	return nil
}

// Errors of SRTP negotiation; each refuses an offer with 488.
var (
	ErrSRTPRequired = errors.New("SRTP is required (RTP/SAVP or a=crypto)")
	ErrSRTPOff      = errors.New("SRTP is not enabled here (RTP/SAVP offered)")
	ErrNoCrypto     = errors.New("no usable a=crypto")
)

// srtpPolicyFor is the policy of a call's origin: its user's or trunk's,
// else the server default.
func (s *Server) srtpPolicyFor(o Origin) SRTPPolicy {
	var p SRTPPolicy
	switch o.Kind {
	case "trunk":
		for i := range s.cfg.Trunks {
			if s.cfg.Trunks[i].Name == o.Name {
				p = s.cfg.Trunks[i].SRTP
			}
		}
	case "user":
		if u, ok := s.users.Lookup(o.Name); ok {
			p = u.SRTP
		}
	}
	if p == "" {
		p = s.cfg.SRTP
	}
	if p == "" {
		p = SRTPOff
	}
	return p
}

// answerSRTP decides our answer to an offer under policy p: the peer's key
// (remote) and ours (local), both nil for plain RTP. prev is our key in the
// call so far, kept when the suite stays (a re-INVITE).
func answerSRTP(p SRTPPolicy, mo *mediaOffer, prev *cryptoAttr) (local, remote *cryptoAttr, err error) {
	secure := mo.Proto == "RTP/SAVP"
	if p == SRTPOff {
		if secure {
			return nil, nil, ErrSRTPOff
		}
		return nil, nil, nil
	}
	if len(mo.Crypto) == 0 {
		switch {
		case mo.CryptoErr != nil && (secure || p == SRTPRequire):
			return nil, nil, fmt.Errorf("%w: %w", ErrNoCrypto, mo.CryptoErr)
		case secure:
			return nil, nil, fmt.Errorf("%w in the RTP/SAVP offer", ErrNoCrypto)
		case p == SRTPRequire:
			return nil, nil, ErrSRTPRequired
		}
		return nil, nil, nil // a plain offer, or crypto lines we cannot use: best effort is plain
	}
	r := mo.Crypto[0] // the offerer's first usable one (RFC 4568 7.1.1)
	var l cryptoAttr
	if prev != nil && prev.Suite == r.Suite {
		l = *prev
	} else {
		l = newCryptoAttr(r.Tag, r.Suite)
	}
	l.Tag = r.Tag
	return &l, &r, nil
}

// defaultOfferSuites are the suites voxgate offers unless sip.srtp_suites
// says otherwise.
var defaultOfferSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}

// checkSuites validates sip.srtp_suites, filling the default.
func checkSuites(names *[]string) error {
	if len(*names) == 0 {
		*names = append([]string(nil), defaultOfferSuites...)
	}
	for i, n := range *names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if _, ok := suiteByName(n); !ok {
			var all []string
			for _, s := range cryptoSuites {
				all = append(all, s.Name)
			}
			return config.Fieldf(fmt.Sprintf("srtp_suites[%d]", i), "unknown crypto suite %q (want %s)", (*names)[i], strings.Join(all, ", "))
		}
		(*names)[i] = n
	}
	return nil
}

// offerSRTP is what voxgate offers under policy p: the transport and the
// crypto lines, one fresh key per suite of names (tags 1, 2, ...).
func offerSRTP(p SRTPPolicy, names []string) (proto string, offer []cryptoAttr) {
	switch p {
	case SRTPOffer:
		proto = "RTP/AVP"
	case SRTPRequire:
		proto = "RTP/SAVP"
	default:
		return "RTP/AVP", nil
	}
	if len(names) == 0 {
		names = defaultOfferSuites
	}
	for i, name := range names {
		if s, ok := suiteByName(name); ok {
			offer = append(offer, newCryptoAttr(i+1, s))
		}
	}
	return proto, offer
}

// takeAnswerSRTP reads the answer to our offer: its crypto line must take
// one of ours (same tag and suite). Our key of that tag is local.
func takeAnswerSRTP(p SRTPPolicy, offered []cryptoAttr, mo *mediaOffer) (local, remote *cryptoAttr, err error) {
	if len(offered) == 0 {
		if mo.Proto == "RTP/SAVP" || len(mo.Crypto) > 0 {
			return nil, nil, fmt.Errorf("%w: SRTP answered to a plain offer", ErrNoCrypto)
		}
		return nil, nil, nil
	}
	if len(mo.Crypto) == 0 {
		if p == SRTPRequire || mo.Proto == "RTP/SAVP" {
			if mo.CryptoErr != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrNoCrypto, mo.CryptoErr)
			}
			return nil, nil, ErrSRTPRequired
		}
		return nil, nil, nil
	}
	r := mo.Crypto[0]
	for i := range offered {
		if offered[i].Tag == r.Tag && offered[i].Suite == r.Suite {
			l := offered[i]
			return &l, &r, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: the answer's tag %d %s is not one offered", ErrNoCrypto, r.Tag, r.Suite.Name)
}

// srtpState is a leg's SRTP: a context per direction and protocol, each used
// by one goroutine only (the RTP reader, the RTCP reader, the sender under
// the session's lock, the RTCP loop).
type srtpState struct {
	local, remote         cryptoAttr
	rtpIn, rtcpIn         *srtp.Context
	rtpOut, rtcpOut       *srtp.Context
	inHdr, outHdr         rtp.Header
	rtcpHdrIn, rtcpHdrOut rtcp.Header
	dec, enc              []byte // the RTP reader's and the sender's buffers
}

func newSRTPState(local, remote cryptoAttr) (*srtpState, error) {
	st := &srtpState{local: local, remote: remote, dec: make([]byte, 0, 1500), enc: make([]byte, 0, 1500+32)}
	mk := func(a cryptoAttr, in bool) (*srtp.Context, error) {
		k, salt := a.keySalt()
		var opts []srtp.ContextOption
		if in {
			opts = append(opts, srtp.SRTPReplayProtection(128), srtp.SRTCPReplayProtection(128))
		}
		return srtp.CreateContext(k, salt, a.Suite.Profile, opts...)
	}
	var err error
	for _, c := range []struct {
		dst *(*srtp.Context)
		a   cryptoAttr
		in  bool
	}{{&st.rtpIn, remote, true}, {&st.rtcpIn, remote, true}, {&st.rtpOut, local, false}, {&st.rtcpOut, local, false}} {
		if *c.dst, err = mk(c.a, c.in); err != nil {
			return nil, fmt.Errorf("srtp %s: %w", c.a.Suite.Name, err)
		}
	}
	return st, nil
}

// setSRTP turns SRTP on (both keys) or off (nil) for the session's media.
// The same keys keep the contexts (and their replay windows).
func (s *rtpSession) setSRTP(local, remote *cryptoAttr) error {
	if local == nil || remote == nil {
		s.srtp.Store(nil)
		return nil
	}
	if cur := s.srtp.Load(); cur != nil && cur.local.Suite == local.Suite && bytes.Equal(cur.local.Key, local.Key) &&
		cur.remote.Suite == remote.Suite && bytes.Equal(cur.remote.Key, remote.Key) {
		return nil
	}
	st, err := newSRTPState(*local, *remote)
	if err != nil {
		return err
	}
	s.srtp.Store(st)
	return nil
}

// srtpSuite names the suite in use ("" for plain RTP).
func (s *rtpSession) srtpSuite() string {
	if st := s.srtp.Load(); st != nil {
		return st.local.Suite.Name
	}
	return ""
}

// srtpDropped counts a packet that failed SRTP or SRTCP authentication (or
// replayed, or came plain on an encrypted leg): it is never played.
func (s *rtpSession) srtpDropped(kind string, err error) {
	s.mu.Lock()
	n := &s.stats.SRTPAuthFailures
	if kind == "rtcp" {
		n = &s.stats.SRTCPAuthFailures
	}
	*n++
	dropped := *n
	s.mu.Unlock()
	if s.srtpFailures != nil {
		if kind == "rtcp" {
			s.srtpFailures[1].Add(1)
		} else {
			s.srtpFailures[0].Add(1)
		}
	}
	if dropped == 1 || dropped%1000 == 0 { // the first, then a reminder now and then
		s.log.Debug("srtp: packet dropped", "kind", kind, "error", err, "dropped", dropped)
	}
}

// unprotectRTP returns the plain packet of a received one: itself without
// SRTP, decrypted into the session's buffer with it; ok false: drop it.
func (s *rtpSession) unprotectRTP(b []byte) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	out, err := st.rtpIn.DecryptRTP(st.dec[:0], b, &st.inHdr)
	if err != nil {
		s.srtpDropped("rtp", err)
		return nil, false
	}
	return out, true
}

// protectRTP encrypts an outgoing packet into the session's buffer (held
// under s.mu).
func (s *rtpSession) protectRTP(b []byte) ([]byte, error) {
	st := s.srtp.Load()
	if st == nil {
		return b, nil
	}
	return st.rtpOut.EncryptRTP(st.enc[:0], b, &st.outHdr)
}

func (s *rtpSession) unprotectRTCP(b []byte) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	out, err := st.rtcpIn.DecryptRTCP(nil, b, &st.rtcpHdrIn)
	if err != nil {
		s.srtpDropped("rtcp", err)
		return nil, false
	}
	return out, true
}

func (s *rtpSession) protectRTCP(b []byte) ([]byte, error) {
	st := s.srtp.Load()
	if st == nil {
		return b, nil
	}
	return st.rtcpOut.EncryptRTCP(nil, b, &st.rtcpHdrOut)
}

// initSRTP sets an incoming call's SRTP once the offer is negotiated: our
// key into the answer and both keys into the media session; for a late
// offer, the crypto lines of our offer in the 200.
func (c *Call) initSRTP(p SRTPPolicy, late bool, mo *mediaOffer, local, remote *cryptoAttr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.srtpPolicy = p
	c.sess.srtpFailures = &c.srv.counters.srtpFailures
	if late {
		c.local.Proto, c.local.Crypto = offerSRTP(p, c.srv.cfg.SRTPSuites)
		return nil
	}
	c.setLocalCryptoLocked(mo, local)
	return c.sess.setSRTP(local, remote)
}

// setLocalCryptoLocked writes our answer's transport and key: the offer's
// transport with SRTP, RTP/AVP without.
func (c *Call) setLocalCryptoLocked(mo *mediaOffer, local *cryptoAttr) {
	c.local.Proto, c.local.Crypto = "", nil
	if local != nil {
		c.local.Proto, c.local.Crypto = mo.Proto, []cryptoAttr{*local}
	}
}

// answerReinviteSRTP negotiates a re-INVITE's offer under the call's policy,
// keeping our key while the suite stays.
func (c *Call) answerReinviteSRTP(mo *mediaOffer) (local, remote *cryptoAttr, err error) {
	c.mu.Lock()
	var prev *cryptoAttr
	if len(c.local.Crypto) == 1 {
		k := c.local.Crypto[0]
		prev = &k
	}
	p := c.srtpPolicy
	c.mu.Unlock()
	return answerSRTP(p, mo, prev)
}

// SRTP names the call's SRTP crypto suite, "" for plain RTP.
func (c *Call) SRTP() string { return c.sess.srtpSuite() }

// ParseSRTPPolicy reads a policy as a config writes it ("" is allowed: the
// default applies).
func ParseSRTPPolicy(s string) (SRTPPolicy, error) {
	p := SRTPPolicy(strings.ToLower(s))
	switch p {
	case "", SRTPOff, SRTPOffer, SRTPRequire:
		return p, nil
	}
	return p, fmt.Errorf("unknown srtp policy %q (want off, offer or require)", s)
}

// readCrypto takes an m-line's a=crypto lines: the usable ones in order,
// and why the first unusable one is not.
func (mo *mediaOffer) readCrypto(attrs []sdp.Attribute) {
	for _, a := range attrs {
		if a.Key != "crypto" {
			continue
		}
		if ca, err := parseCrypto(a.Value); err == nil {
			mo.Crypto = append(mo.Crypto, ca)
		} else if mo.CryptoErr == nil {
			mo.CryptoErr = err
		}
	}
}
