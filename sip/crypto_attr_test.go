package sip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var (
	key30 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 30))
	key28 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 28))
)

func TestParseCrypto(t *testing.T) {
	for _, tc := range []struct {
		in    string
		tag   int
		suite string
		err   error
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, 1, "AES_CM_128_HMAC_SHA1_80", nil},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20", 2, "AES_CM_128_HMAC_SHA1_32", nil},
		{"3 AEAD_AES_128_GCM inline:" + key28, 3, "AEAD_AES_128_GCM", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key30, "=") + " WSH=64", 1, "AES_CM_128_HMAC_SHA1_80", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576 KDR=0", 1, "AES_CM_128_HMAC_SHA1_80", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", 0, "", ErrCryptoMKI},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", 0, "", ErrCryptoMKI},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, 0, "", ErrCryptoMultipleKey},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", 0, "", ErrCryptoSessParam},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=10", 0, "", ErrCryptoSessParam},
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, 0, "", ErrCryptoSuite},
		{"1 F8_128_HMAC_SHA1_80 inline:" + key30, 0, "", ErrCryptoSuite},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key28, 0, "", ErrBadCrypto}, // short key
		{"1 AEAD_AES_128_GCM inline:" + key30, 0, "", ErrBadCrypto},        // GCM wants 28 bytes
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!", 0, "", ErrBadCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:http://x/" + key30, 0, "", ErrBadCrypto},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, 0, "", ErrBadCrypto},
		{"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, 0, "", ErrBadCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80", 0, "", ErrBadCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^99", 0, "", ErrBadCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|0", 0, "", ErrBadCrypto},
		{"", 0, "", ErrBadCrypto},
	} {
		a, err := parseCrypto(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: error %v, want %v", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), key30) {
				t.Errorf("%q: the error quotes the key: %v", tc.in, err)
			}
			continue
		}
		if err != nil || a.Tag != tc.tag || a.Suite.Name != tc.suite || len(a.Key) != a.Suite.KeyLen {
			t.Errorf("%q: got %+v, %v", tc.in, a, err)
		}
	}
}

// What voxgate writes it reads back; the masked form and MaskSDP never
// carry the key.
func TestCryptoWriteMask(t *testing.T) {
	for _, s := range cryptoSuites {
		a := newCryptoAttr(5, s)
		b, err := parseCrypto(a.String())
		if err != nil || b.Tag != 5 || b.Suite != s || !bytes.Equal(a.Key, b.Key) {
			t.Fatalf("%s: round trip %+v, %v", s.Name, b, err)
		}
		enc := base64.StdEncoding.EncodeToString(a.Key)
		sdpText := "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:" + a.String() + "\r\na=crypto:" + a.String() + " WSH=64\r\na=ptime:20\r\n"
		masked := MaskSDP(sdpText)
		if strings.Contains(masked, enc) || strings.Contains(a.masked(), enc) {
			t.Fatalf("the key shows through the mask:\n%s\n%s", masked, a.masked())
		}
		if !strings.Contains(masked, "a=crypto:5 "+s.Name+" inline:<hidden> WSH=64\r\n") || !strings.Contains(masked, "a=ptime:20\r\n") {
			t.Fatalf("masked SDP lost its other parts:\n%s", masked)
		}
	}
}

// parseCrypto takes outside input: it never panics, errors never quote a
// whole key, and what it accepts it writes back the same.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30)
	f.Add("2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4")
	f.Add("3 AEAD_AES_128_GCM inline:" + key28 + " WSH=64")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30)
	f.Add("9 X inline:|||")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := parseCrypto(in)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error too long (quotes input): %v", err)
			}
			return
		}
		if len(a.Key) != a.Suite.KeyLen {
			t.Fatalf("accepted a %d-byte key for %s", len(a.Key), a.Suite.Name)
		}
		b, err := parseCrypto(a.String())
		if err != nil || b.Tag != a.Tag || b.Suite != a.Suite || !bytes.Equal(a.Key, b.Key) {
			t.Fatalf("%q: written %q reads back %+v, %v", in, a.String(), b, err)
		}
		_ = MaskSDP("a=crypto:" + in)
	})
}
