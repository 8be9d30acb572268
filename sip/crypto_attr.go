package sip

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// Errors of SDES crypto attributes (RFC 4568); an offer whose every crypto
// line fails is refused 488 with the reason.
var (
	ErrBadCrypto         = errors.New("malformed a=crypto")
	ErrCryptoSuite       = errors.New("unsupported SRTP crypto suite")
	ErrCryptoMKI         = errors.New("SRTP MKI is not supported")
	ErrCryptoSessParam   = errors.New("unsupported SRTP session parameter")
	ErrCryptoMultipleKey = errors.New("more than one SRTP master key is not supported")
)

// cryptoSuite is an SDES crypto suite voxgate speaks.
type cryptoSuite struct {
	Name    string
	Profile srtp.ProtectionProfile
	KeyLen  int // master key plus master salt, bytes
}

// cryptoSuites are the suites voxgate takes, in its order of preference when
// it answers; AEAD_AES_128_GCM (RFC 7714) is answered when offered, never
// offered (deployed SIP phones rarely have it).
var cryptoSuites = []cryptoSuite{
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16 + 12},
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16 + 14},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16 + 14},
}

func suiteByName(name string) (cryptoSuite, bool) {
	for _, s := range cryptoSuites {
		if s.Name == name {
			return s, true
		}
	}
	return cryptoSuite{}, false
}

// cryptoAttr is one a=crypto line: a tag, a suite and its master key and
// salt (concatenated, as the inline key carries them).
type cryptoAttr struct {
	Tag   int
	Suite cryptoSuite
	Key   []byte // master key || master salt
}

// parseCrypto reads the value of an a=crypto attribute:
//
//	<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]
//
// A lifetime is accepted (voxgate does not rekey; a call outlasting 2^31
// packets is not a concern); an MKI, several keys and session parameters
// other than WSH (and KDR=0) are refused.
func parseCrypto(v string) (cryptoAttr, error) {
	var a cryptoAttr
	f := strings.Fields(v)
	if len(f) < 3 {
		return a, fmt.Errorf("%w: want tag, suite and key", ErrBadCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 9 {
		return a, fmt.Errorf("%w: tag %q", ErrBadCrypto, clip(f[0]))
	}
	a.Tag = tag
	suite, ok := suiteByName(f[1])
	if !ok {
		return a, fmt.Errorf("%w %q", ErrCryptoSuite, clip(f[1]))
	}
	a.Suite = suite
	if strings.Contains(f[2], ";") {
		return a, ErrCryptoMultipleKey
	}
	method, info, ok := strings.Cut(f[2], ":")
	if !ok || method != "inline" {
		return a, fmt.Errorf("%w: key method %q (want inline)", ErrBadCrypto, clip(method))
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return a, fmt.Errorf("%w: key parameters", ErrBadCrypto)
	}
	key, err := decodeKey(parts[0])
	if err != nil || len(key) != suite.KeyLen {
		return a, fmt.Errorf("%w: the %s key must be %d bytes of base64", ErrBadCrypto, suite.Name, suite.KeyLen)
	}
	a.Key = key
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			return a, ErrCryptoMKI
		}
		if !validLifetime(p) {
			return a, fmt.Errorf("%w: lifetime %q", ErrBadCrypto, clip(p))
		}
	}
	for _, sp := range f[3:] {
		name, val, _ := strings.Cut(sp, "=")
		switch {
		case name == "WSH":
		case name == "KDR" && val == "0":
		default:
			return a, fmt.Errorf("%w %q", ErrCryptoSessParam, clip(name))
		}
	}
	return a, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// validLifetime accepts "2^N" (N <= 48) or a positive decimal.
func validLifetime(s string) bool {
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(exp)
		return err == nil && n >= 1 && n <= 48
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

// clip shortens outside input quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// String writes the attribute's value (without "a=crypto:").
func (a cryptoAttr) String() string {
	return fmt.Sprintf("%d %s inline:%s", a.Tag, a.Suite.Name, base64.StdEncoding.EncodeToString(a.Key))
}

// masked is the attribute with its key hidden, for logs.
func (a cryptoAttr) masked() string {
	return fmt.Sprintf("%d %s inline:<%d bytes>", a.Tag, a.Suite.Name, len(a.Key))
}

// newCryptoAttr makes a fresh random master key and salt for suite.
func newCryptoAttr(tag int, suite cryptoSuite) cryptoAttr {
	key := make([]byte, suite.KeyLen)
	_, _ = rand.Read(key)
	return cryptoAttr{Tag: tag, Suite: suite, Key: key}
}

// keySalt splits the inline key into master key and master salt.
func (a cryptoAttr) keySalt() (key, salt []byte) { return a.Key[:16], a.Key[16:] }

// MaskSDP returns body with the key of every a=crypto line replaced, for
// logging an SDP (RFC 4568 keys are secrets: they must never reach a log).
func MaskSDP(body string) string {
	var b strings.Builder
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, "a=crypto:"); ok {
			if i := strings.Index(rest, "inline:"); i >= 0 {
				tail := ""
				if end := strings.IndexAny(rest[i:], " \r\n"); end >= 0 {
					tail = rest[i+end:]
				}
				line = "a=crypto:" + rest[:i] + "inline:<hidden>" + tail
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
