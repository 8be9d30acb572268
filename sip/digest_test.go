package sip

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// RFC 7616 section 3.9.1 test vectors.
func TestDigestRFC7616Vectors(t *testing.T) {
	c := Credentials{
		Username: "Mufasa", Realm: "http-auth@example.org", URI: "/dir/index.html", QOP: "auth", NC: "00000001",
		Nonce:  "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
		CNonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
	}
	for algo, want := range map[string]string{
		"MD5":     "8ca523f5e9506fed4657c9700eebdbec",
		"SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
	} {
		ha1 := hashHex(algo, "Mufasa:http-auth@example.org:Circle of Life")
		if got := expectedResponse(algo, ha1, "GET", c); got != want {
			t.Errorf("%s: %s, want %s", algo, got, want)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		user string
	}{
		{`Digest username="alice", realm="voxgate", nonce="n", uri="sip:voxgate", response="abc", qop=auth, nc=00000001, cnonce="x"`, true, "alice"},
		{`digest username="a\"b",realm="r",nonce="n",uri="u",response="r"`, true, `a"b`},
		{`Basic YWxhZGRpbjpvcGVuc2VzYW1l`, false, ""},
		{`Digest username="alice", realm="voxgate"`, false, ""},
		{`Digest username="unterminated`, false, ""},
		{`Digest =x`, false, ""},
		{``, false, ""},
	}
	for _, tc := range cases {
		c, err := ParseCredentials(tc.in)
		if (err == nil) != tc.ok || (tc.ok && c.Username != tc.user) {
			t.Errorf("%q: %+v, %v", tc.in, c, err)
		}
	}
}

func TestDigestVerify(t *testing.T) {
	d := &digestAuth{realm: "voxgate", nonces: newNonces(time.Minute), algos: []string{"SHA-256", "MD5"}}
	u := User{Name: "alice", Password: "pw"}
	for _, algo := range []string{"MD5", "SHA-256"} {
		ch := `Digest realm="voxgate", nonce="` + d.nonces.issue() + `", algorithm=` + algo
		c, err := ParseCredentials(digestHeader(t, ch, "REGISTER", "sip:voxgate", "alice", "pw"))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.verify(c, "REGISTER", u); err != nil {
			t.Errorf("%s right password: %v", algo, err)
		}
		if err := d.verify(c, "INVITE", u); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s wrong method: %v", algo, err)
		}
		if err := d.verify(c, "REGISTER", User{Name: "alice", Password: "other"}); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s wrong password: %v", algo, err)
		}
	}
	// A forged nonce and an expired one.
	c, _ := ParseCredentials(digestHeader(t, `Digest realm="voxgate", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAA"`, "REGISTER", "sip:x", "alice", "pw"))
	if err := d.verify(c, "REGISTER", u); !errors.Is(err, ErrBadNonce) {
		t.Errorf("forged nonce: %v", err)
	}
	old := d.nonces.issue()
	d.nonces.skew.Store(int64(2 * time.Minute))
	c, _ = ParseCredentials(digestHeader(t, `Digest realm="voxgate", nonce="`+old+`"`, "REGISTER", "sip:x", "alice", "pw"))
	if err := d.verify(c, "REGISTER", u); !errors.Is(err, ErrStaleNonce) {
		t.Errorf("expired nonce, right password: %v, want stale", err)
	}
	// An HA1-only MD5 account cannot answer SHA-256.
	c.Algorithm = "SHA-256"
	if err := d.verify(c, "REGISTER", User{Name: "alice", HA1: hashHex("MD5", "alice:voxgate:pw")}); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("MD5 HA1 with SHA-256: %v", err)
	}
}

// A replayed request (the same nonce count again) is refused as stale, so
// a captured REGISTER cannot be sent again; the next count is accepted.
func TestDigestReplay(t *testing.T) {
	d := &digestAuth{realm: "voxgate", nonces: newNonces(time.Minute), algos: []string{"MD5"}}
	u := User{Name: "alice", Password: "pw"}
	ch := `Digest realm="voxgate", nonce="` + d.nonces.issue() + `", algorithm=MD5`
	c, err := ParseCredentials(digestHeader(t, ch, "REGISTER", "sip:voxgate", "alice", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.verify(c, "REGISTER", u); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := d.verify(c, "REGISTER", u); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("replay: %v, want stale", err)
	}
	next := c
	next.NC = "00000002"
	next.Response = expectedResponse("MD5", hashHex("MD5", "alice:voxgate:pw"), "REGISTER", next)
	if err := d.verify(next, "REGISTER", u); err != nil {
		t.Fatalf("the next nonce count: %v", err)
	}
	if err := d.verify(c, "REGISTER", u); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("an older count: %v, want stale", err)
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="alice", realm="voxgate", nonce="n", uri="sip:voxgate", response="abc", qop=auth, nc=00000001, cnonce="x"`)
	f.Add(`Digest username="a\"b",realm=r`)
	f.Add(`Digest a=`)
	f.Add(`Digest USERNAME="a", Realm=r, nonce="n",uri="u" , response = "x\\y", nonce="m", username="b"`)
	f.Add(`Digest username="x\`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentials(s)
		if err == nil && (c.Username == "" || c.Nonce == "" || c.Response == "") {
			t.Fatalf("accepted incomplete credentials %+v", c)
		}
		// The same as reading the parameters into a map (as it was done
		// before the allocation-free reading).
		want, wantErr := parseCredentialsMap(s)
		if (err == nil) != (wantErr == nil) || c != want {
			t.Fatalf("%q: %+v, %v; a map gives %+v, %v", s, c, err, want, wantErr)
		}
	})
}

// parseCredentialsMap is ParseCredentials through a map of the parameters.
func parseCredentialsMap(v string) (Credentials, error) {
	var c Credentials
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return c, ErrBadCredentials
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return c, err
	}
	for k, val := range params {
		switch k {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		case "cnonce":
			c.CNonce = val
		case "opaque":
			c.Opaque = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return c, ErrBadCredentials
	}
	if c.Algorithm == "" {
		c.Algorithm = "MD5"
	}
	return c, nil
}

// The nonces' MAC is HMAC-SHA256 as crypto/hmac computes it.
func TestNonceMAC(t *testing.T) {
	n := newNonces(time.Minute)
	for i := 0; i < 100; i++ {
		var id nonceID
		_, _ = rand.Read(id[:])
		m := hmac.New(sha256.New, n.key)
		m.Write(id[:])
		want := m.Sum(nil)[:12]
		if got := n.mac(&id); !bytes.Equal(got[:], want) {
			t.Fatalf("%x: %x, want %x", id, got, want)
		}
	}
}

// A nonce of ours altered in any way, or of another length, is not ours.
func TestNonceForged(t *testing.T) {
	n := newNonces(time.Minute)
	v := n.issue()
	if len(v) != nonceLen {
		t.Fatalf("nonce %q: %d characters, want %d", v, len(v), nonceLen)
	}
	for _, bad := range []string{"", v[:nonceLen-1], v + "A", v[:10] + "\n" + v[10:], strings.Repeat("A", nonceLen), v[:nonceLen-1] + "*"} {
		if _, err := n.check(bad); !errors.Is(err, ErrBadNonce) {
			t.Errorf("%q: %v, want %v", bad, err, ErrBadNonce)
		}
	}
	for i := 0; i < nonceLen; i++ {
		b := []byte(v)
		b[i] ^= 0x01 // another base64 letter, or a character outside it
		if _, err := n.check(string(b)); !errors.Is(err, ErrBadNonce) {
			t.Errorf("%q (character %d changed): %v, want %v", b, i, err, ErrBadNonce)
		}
	}
}

// verify reaches the same answers with the response in upper-case hex, and
// the algorithm named in lower case.
func TestDigestVerifyCase(t *testing.T) {
	d := &digestAuth{realm: "voxgate", nonces: newNonces(time.Minute), algos: []string{"MD5"}}
	u := User{Name: "alice", Password: "pw"}
	for _, algo := range []string{"md5", "sha-256"} {
		ch := `Digest realm="voxgate", nonce="` + d.nonces.issue() + `", algorithm=` + strings.ToUpper(algo)
		c, err := ParseCredentials(digestHeader(t, ch, "REGISTER", "sip:voxgate", "alice", "pw"))
		if err != nil {
			t.Fatal(err)
		}
		c.Algorithm, c.Response = algo, strings.ToUpper(c.Response)
		if err := d.verify(c, "REGISTER", u); err != nil {
			t.Errorf("%s: %v", algo, err)
		}
		c.Response = c.Response[:len(c.Response)-1]
		if err := d.verify(c, "REGISTER", u); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s, a short response: %v, want %v", algo, err, ErrWrongPassword)
		}
	}
}

// Nonces issued in the same instant differ: two phones challenged at once
// must not share one (the second's nc=1 would be refused as a replay).
func TestNoncesUnique(t *testing.T) {
	n := newNonces(time.Minute)
	seen := make(map[string]bool, 200000)
	for i := 0; i < 200000; i++ {
		v := n.issue()
		if seen[v] {
			t.Fatalf("nonce %d repeats an earlier one", i)
		}
		seen[v] = true
		if _, err := n.check(v); err != nil {
			t.Fatal(err)
		}
	}
}
