package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/voxgate/voxgate/audio"
)

func srtpOfferSDP(proto string, crypto ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 %s 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n", proto)
	for _, c := range crypto {
		b.WriteString("a=crypto:" + c + "\r\n")
	}
	return []byte(b.String())
}

// The policy matrix: each offer under each policy is answered (with or
// without SRTP, on the offer's transport) or refused 488 with a reason.
func TestSRTPPolicyMatrix(t *testing.T) {
	cm80 := "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30
	cm32 := "2 AES_CM_128_HMAC_SHA1_32 inline:" + key30
	gcm := "4 AEAD_AES_128_GCM inline:" + key28
	mki := "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4"
	offers := []struct {
		name string
		sdp  []byte
	}{
		{"AVP plain", srtpOfferSDP("RTP/AVP")},
		{"AVP crypto", srtpOfferSDP("RTP/AVP", cm80, cm32)},
		{"SAVP 80,32", srtpOfferSDP("RTP/SAVP", cm80, cm32)},
		{"SAVP 32", srtpOfferSDP("RTP/SAVP", cm32)},
		{"SAVP gcm,80", srtpOfferSDP("RTP/SAVP", gcm, cm80)},
		{"SAVP none", srtpOfferSDP("RTP/SAVP")},
		{"SAVP mki", srtpOfferSDP("RTP/SAVP", mki)},
		{"AVP mki", srtpOfferSDP("RTP/AVP", mki)},
	}
	// want: "488 <error>" or "<proto> <suite or plain>"
	want := map[string][3]string{ // off, offer, require
		"AVP plain":   {"RTP/AVP plain", "RTP/AVP plain", "488 " + ErrSRTPRequired.Error()},
		"AVP crypto":  {"RTP/AVP plain", "RTP/AVP 1 AES_CM_128_HMAC_SHA1_80", "RTP/AVP 1 AES_CM_128_HMAC_SHA1_80"},
		"SAVP 80,32":  {"488 " + ErrSRTPOff.Error(), "RTP/SAVP 1 AES_CM_128_HMAC_SHA1_80", "RTP/SAVP 1 AES_CM_128_HMAC_SHA1_80"},
		"SAVP 32":     {"488 " + ErrSRTPOff.Error(), "RTP/SAVP 2 AES_CM_128_HMAC_SHA1_32", "RTP/SAVP 2 AES_CM_128_HMAC_SHA1_32"},
		"SAVP gcm,80": {"488 " + ErrSRTPOff.Error(), "RTP/SAVP 4 AEAD_AES_128_GCM", "RTP/SAVP 4 AEAD_AES_128_GCM"},
		"SAVP none":   {"488 " + ErrSRTPOff.Error(), "488 no usable a=crypto in the RTP/SAVP offer", "488 no usable a=crypto in the RTP/SAVP offer"},
		"SAVP mki":    {"488 " + ErrSRTPOff.Error(), "488 no usable a=crypto: SRTP MKI is not supported", "488 no usable a=crypto: SRTP MKI is not supported"},
		"AVP mki":     {"RTP/AVP plain", "RTP/AVP plain", "488 no usable a=crypto: SRTP MKI is not supported"},
	}
	for _, o := range offers {
		for i, p := range []SRTPPolicy{SRTPOff, SRTPOffer, SRTPRequire} {
			mo, err := parseOffer(o.sdp, []codecInfo{sipCodecs["pcmu"]})
			if err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			local, remote, err := answerSRTP(p, &mo, nil)
			var got string
			if err != nil {
				got = "488 " + err.Error()
			} else {
				l := localMedia{IP: netip.MustParseAddr("127.0.0.1"), Port: 5000, Codecs: []codecInfo{mo.Codec}, PTs: []uint8{0}, Ptime: 20, Direction: SendRecv}
				suite := "plain"
				if local != nil {
					l.Proto, l.Crypto = mo.Proto, []cryptoAttr{*local}
					suite = fmt.Sprintf("%d %s", local.Tag, local.Suite.Name)
					if remote.Suite != local.Suite || remote.Tag != local.Tag || bytes.Equal(local.Key, remote.Key) {
						t.Errorf("%s/%s: remote %s, local %s", o.name, p, remote.masked(), local.masked())
					}
				}
				ans, err := parseOffer(l.marshal(&mo), []codecInfo{sipCodecs["pcmu"]})
				if err != nil {
					t.Fatalf("%s/%s: our answer does not parse: %v", o.name, p, err)
				}
				if local != nil && (len(ans.Crypto) != 1 || !bytes.Equal(ans.Crypto[0].Key, local.Key)) {
					t.Errorf("%s/%s: the answer's crypto lines %d", o.name, p, len(ans.Crypto))
				}
				got = ans.Proto + " " + suite
			}
			if got != want[o.name][i] {
				t.Errorf("offer %s, policy %s: got %q, want %q", o.name, p, got, want[o.name][i])
			}
		}
	}
}

// voxgate's offers by policy and how it reads the answers to them.
func TestSRTPOfferAnswer(t *testing.T) {
	for _, tc := range []struct {
		p      SRTPPolicy
		answer func(offer []cryptoAttr) []byte
		want   string // suite, "plain" or "error"
	}{
		{SRTPOffer, func([]cryptoAttr) []byte { return srtpOfferSDP("RTP/AVP") }, "plain"},
		{SRTPRequire, func([]cryptoAttr) []byte { return srtpOfferSDP("RTP/AVP") }, "error"},
		{SRTPOffer, func(o []cryptoAttr) []byte {
			return srtpOfferSDP("RTP/AVP", fmt.Sprintf("2 AES_CM_128_HMAC_SHA1_32 inline:%s", key30))
		}, "AES_CM_128_HMAC_SHA1_32"},
		{SRTPRequire, func(o []cryptoAttr) []byte {
			return srtpOfferSDP("RTP/SAVP", fmt.Sprintf("1 AES_CM_128_HMAC_SHA1_80 inline:%s", key30))
		}, "AES_CM_128_HMAC_SHA1_80"},
		{SRTPRequire, func(o []cryptoAttr) []byte { // a tag we did not offer
			return srtpOfferSDP("RTP/SAVP", fmt.Sprintf("7 AES_CM_128_HMAC_SHA1_80 inline:%s", key30))
		}, "error"},
		{SRTPOff, func(o []cryptoAttr) []byte { // SRTP answered to a plain offer
			return srtpOfferSDP("RTP/SAVP", fmt.Sprintf("1 AES_CM_128_HMAC_SHA1_80 inline:%s", key30))
		}, "error"},
	} {
		proto, offer := offerSRTP(tc.p, nil)
		if (tc.p == SRTPRequire) != (proto == "RTP/SAVP") || (tc.p == SRTPOff) != (len(offer) == 0) {
			t.Fatalf("%s offers %s with %d keys", tc.p, proto, len(offer))
		}
		mo, err := parseOffer(tc.answer(offer), []codecInfo{sipCodecs["pcmu"]})
		if err != nil {
			t.Fatal(err)
		}
		local, _, err := takeAnswerSRTP(tc.p, offer, &mo)
		got := "plain"
		switch {
		case err != nil:
			got = "error"
		case local != nil:
			got = local.Suite.Name
			if !bytes.Equal(local.Key, offer[local.Tag-1].Key) {
				t.Errorf("%s: our key is not the one offered with tag %d", tc.p, local.Tag)
			}
		}
		if got != tc.want {
			t.Errorf("%s, answer %s: got %s (%v), want %s", tc.p, mo.Proto, got, err, tc.want)
		}
	}
}

// srtpPair is two media sessions whose SRTP keys match: a sends to b.
func srtpPair(t *testing.T, suite string) (a, b *rtpSession, aKey cryptoAttr) {
	t.Helper()
	s, _ := suiteByName(suite)
	ka, kb := newCryptoAttr(1, s), newCryptoAttr(1, s)
	b = testSession(t, netip.MustParseAddrPort("127.0.0.1:9"), SendRecv)
	a = testSession(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.port)), SendRecv)
	if err := a.setSRTP(&ka, &kb); err != nil {
		t.Fatal(err)
	}
	if err := b.setSRTP(&kb, &ka); err != nil {
		t.Fatal(err)
	}
	return a, b, ka
}

// Two legs with each other's keys carry audio (every suite); a tampered
// packet and a plain one are dropped and counted, never handed on.
func TestSRTPRoundTripAndTamper(t *testing.T) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"} {
		t.Run(suite, func(t *testing.T) {
			a, b, aKey := srtpPair(t, suite)
			got := make(chan []byte, 16)
			b.setHandler(audio.PacketHandlerFunc(func(p *audio.Packet) { got <- append([]byte(nil), p.Payload...) }))
			payload := bytes.Repeat([]byte{0x5a}, 160)
			if err := a.writePayload(payload, 160); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-got:
				if !bytes.Equal(p, payload) {
					t.Fatalf("b got %x", p[:8])
				}
			case <-time.After(2 * time.Second):
				t.Fatal("nothing arrived over SRTP")
			}
			// A forger's packets: with a's key but a flipped bit, and plain.
			k, salt := aKey.keySalt()
			ctx, err := srtp.CreateContext(k, salt, aKey.Suite.Profile)
			if err != nil {
				t.Fatal(err)
			}
			peer := rtpPeer(t)
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.port}
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 77, SequenceNumber: 1000, Timestamp: 5}, Payload: bytes.Repeat([]byte{0x11}, 160)}
			plain, _ := pkt.Marshal()
			enc, err := ctx.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			enc[20] ^= 1
			for _, m := range [][]byte{enc, plain} {
				if _, err := peer.WriteToUDP(m, to); err != nil {
					t.Fatal(err)
				}
			}
			// Then a good one from the forger's context: the only one handed on.
			pkt.SequenceNumber++
			pkt.Payload = bytes.Repeat([]byte{0x22}, 160)
			plain, _ = pkt.Marshal()
			good, _ := ctx.EncryptRTP(nil, plain, nil)
			if _, err := peer.WriteToUDP(good, to); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-got:
				if !bytes.Equal(p, pkt.Payload) {
					t.Fatalf("a dropped packet was handed on: %x", p[:8])
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the good packet after the bad ones did not arrive")
			}
			if n := b.snapshot().SRTPAuthFailures; n != 2 {
				t.Fatalf("SRTPAuthFailures = %d, want 2", n)
			}
			// SRTCP: a's report arrives; a tampered one is dropped and counted.
			a.sendRTCP(false)
			srtpWaitFor(t, func() bool { return b.snapshot().RTCPReceived == 1 }, "a's SRTCP report at b")
			rr, _ := (&rtcp.ReceiverReport{SSRC: 77}).Marshal()
			srtcp, err := ctx.EncryptRTCP(nil, rr, nil)
			if err != nil {
				t.Fatal(err)
			}
			srtcp[len(srtcp)-1] ^= 1
			if _, err := peer.WriteToUDP(srtcp, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.port + 1}); err != nil {
				t.Fatal(err)
			}
			srtpWaitFor(t, func() bool { return b.snapshot().SRTCPAuthFailures == 1 }, "the tampered SRTCP counted")
			if st := b.snapshot(); st.RTCPReceived != 1 || st.SRTPAuthFailures != 2 {
				t.Fatalf("after a tampered SRTCP packet: %+v", st)
			}
		})
	}
}

// SRTP keeps the media path allocation-free, both ways.
func TestSRTPPacketAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	peer := rtpPeer(t)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
	suite, _ := suiteByName("AES_CM_128_HMAC_SHA1_80")
	ours, theirs := newCryptoAttr(1, suite), newCryptoAttr(1, suite)
	if err := s.setSRTP(&ours, &theirs); err != nil {
		t.Fatal(err)
	}
	k, salt := theirs.keySalt()
	ctx, err := srtp.CreateContext(k, salt, suite.Profile)
	if err != nil {
		t.Fatal(err)
	}
	pkts := make([][]byte, 600) // encrypted before measuring: the peer's work is not ours
	for i := range pkts {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i * 160)}, Payload: make([]byte, 160)}
		plain, _ := p.Marshal()
		if pkts[i], err = ctx.EncryptRTP(nil, plain, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan struct{}, 1)
	s.setHandler(audio.PacketHandlerFunc(func(*audio.Packet) { got <- struct{}{} }))
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port}
	i := 0
	recv := testing.AllocsPerRun(500, func() {
		if _, err := peer.WriteToUDP(pkts[i], to); err != nil {
			t.Fatal(err)
		}
		i++
		<-got
	})
	payload := make([]byte, 160)
	buf := make([]byte, 1500)
	send := testing.AllocsPerRun(500, func() {
		if err := s.writePayload(payload, 160); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if recv != 0 || send != 0 {
		t.Fatalf("%v allocations per SRTP packet received, %v per packet sent; want 0", recv, send)
	}
	if n := s.snapshot().SRTPAuthFailures; n != 0 {
		t.Fatalf("%d packets failed", n)
	}
}

// Two voxgate servers call each other through a trunk: the policies of
// both ends decide between SRTP, plain RTP and 488; an SRTP call carries
// audio both ways, and the counters show nothing dropped.
func TestSRTPCallBetweenServers(t *testing.T) {
	for _, tc := range []struct {
		gw, carrier SRTPPolicy
		suites      []string // the gateway's sip.srtp_suites
		want        string   // suite, "plain" or "488"
	}{
		{SRTPRequire, SRTPRequire, nil, "AES_CM_128_HMAC_SHA1_80"},
		{SRTPOffer, SRTPOffer, nil, "AES_CM_128_HMAC_SHA1_80"},
		{SRTPRequire, SRTPOffer, []string{"aead_aes_128_gcm", "AES_CM_128_HMAC_SHA1_80"}, "AEAD_AES_128_GCM"},
		{SRTPOffer, SRTPRequire, []string{"AES_CM_128_HMAC_SHA1_32"}, "AES_CM_128_HMAC_SHA1_32"},
		{SRTPOffer, SRTPOff, nil, "plain"},
		{SRTPRequire, SRTPOff, nil, "488"},
		{SRTPOff, SRTPRequire, nil, "488"},
	} {
		t.Run(fmt.Sprintf("%s-to-%s-%s", tc.gw, tc.carrier, tc.want), func(t *testing.T) {
			echo := &echoHandler{}
			car, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "33100-33199", Domain: "carrier.test",
				Codecs: []string{"pcmu"}, SRTP: tc.carrier},
				WithLogger(quietLogger()), WithUsers(NewUsers(User{Name: "4930123", Password: "trunk-pw"})), WithHandler(echo))
			if err != nil {
				t.Fatal(err)
			}
			if err := car.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer car.Close()
			gw, _ := testServer(t, func(cfg *Config) {
				f := false
				cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: car.Addrs()[0].String(), Username: "4930123", Password: "trunk-pw", Register: &f, SRTP: tc.gw}}
				cfg.SRTPSuites = tc.suites
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := gw.DialTrunk(ctx, "carrier", "100", DialOptions{})
			if tc.want == "488" {
				var r *Rejection
				if !errors.As(err, &r) || r.Status != 488 {
					t.Fatalf("want a 488 rejection, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			calls, _ := echo.snapshot()
			if got := srtpOr(c.SRTP(), "plain"); got != tc.want || srtpOr(calls[0].SRTP(), "plain") != tc.want {
				t.Fatalf("SRTP %q at voxgate, %q at the carrier; want %q", c.SRTP(), calls[0].SRTP(), tc.want)
			}
			got := toneThrough(t, c, 700, 2*time.Second)
			if secs := audio.ToneSeconds(got, 8000, 700, 0.2); secs < 1.2 {
				t.Fatalf("echo over %s: %.2fs of tone", tc.want, secs)
			}
			if st := c.Stats(); st.SRTPAuthFailures != 0 || calls[0].Stats().SRTPAuthFailures != 0 || gw.ServerStats().SRTPAuthFailures != 0 {
				t.Fatalf("packets dropped: %d here, %d there", st.SRTPAuthFailures, calls[0].Stats().SRTPAuthFailures)
			}
			c.Hangup(ctx)
		})
	}
}

// waitFor polls cond until it holds, or fails the test after 2 s.
func srtpWaitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func srtpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// The policy fields are checked, with errors naming them.
func TestSRTPConfig(t *testing.T) {
	cfg := Config{SRTP: "maybe"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "srtp") || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("sip.srtp: %v", err)
	}
	f := false
	cfg = Config{SRTP: "Require", Trunks: []TrunkConfig{{Name: "t", Registrar: "127.0.0.1", Register: &f, SRTP: "always"}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "trunks[0].srtp") {
		t.Fatalf("trunks[0].srtp: %v", err)
	}
	cfg.Trunks[0].SRTP = "OFFER"
	if err := cfg.Validate(); err != nil || cfg.SRTP != SRTPRequire || cfg.Trunks[0].SRTP != SRTPOffer ||
		strings.Join(cfg.SRTPSuites, ",") != "AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32" {
		t.Fatalf("%v %q %q %v", err, cfg.SRTP, cfg.Trunks[0].SRTP, cfg.SRTPSuites)
	}
	cfg.SRTPSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "srtp_suites[1]") {
		t.Fatalf("srtp_suites[1]: %v", err)
	}
}

// Over raw SIP: a plain offer to require gets 488 naming why; an RTP/SAVP
// offer is answered RTP/SAVP with one key of voxgate's, the echo returns
// SRTP that decrypts with that key, and a tampered packet is dropped and
// counted in /metrics' source; a hold re-INVITE keeps the key, a plain one is
// refused 488; a late offer under require offers RTP/SAVP.
func TestSRTPRawSIP(t *testing.T) {
	echo := &echoHandler{}
	srv, addr := testServer(t, func(cfg *Config) { cfg.SRTP = SRTPRequire }, WithHandler(echo))
	rtpConn := rtpPeer(t)
	rtpPort := rtpConn.LocalAddr().(*net.UDPAddr).Port
	offer := func(proto string, extra ...string) string {
		b := strings.Replace(testOffer, "m=audio 40000 RTP/AVP", fmt.Sprintf("m=audio %d %s", rtpPort, proto), 1)
		for _, e := range extra {
			b += e + "\r\n"
		}
		return b
	}
	sdpHdr := "Content-Type: application/sdp\n"

	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "plain1", 1, sdpHdr, offer("RTP/AVP"))))
	if res := c.final(3 * time.Second); res.StatusCode != 488 || !strings.Contains(res.Reason, "SRTP is required") {
		t.Fatalf("plain offer under require: %d %s", res.StatusCode, res.Reason)
	}

	ourKey := "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30
	c.send(guest(request("INVITE", "sip:9196@voxgate", "savp1", 1, sdpHdr, offer("RTP/SAVP", "a=crypto:"+ourKey))))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("RTP/SAVP offer: %d %s", res.StatusCode, res.Reason)
	}
	ans, err := parseOffer(res.Body(), bothCodecs)
	if err != nil || ans.Proto != "RTP/SAVP" || len(ans.Crypto) != 1 || ans.Crypto[0].Tag != 1 || ans.Crypto[0].Suite.Name != "AES_CM_128_HMAC_SHA1_80" {
		t.Fatalf("answer %v %+v:\n%s", err, ans, MaskSDP(string(res.Body())))
	}
	theirs := ans.Crypto[0]
	tag, _ := res.To().Params.Get("tag")
	inDialog := func(method string, cseq int, extra, body string) string {
		m := guest(request(method, "sip:9196@voxgate", "savp1", cseq, extra, body))
		return strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1)
	}
	c.send(strings.Replace(inDialog("ACK", 1, "", ""), "branch=z9hG4bKsavp11", "branch=z9hG4bKack11", 1))

	// SRTP to the echo with our key; what returns decrypts with voxgate's.
	mine, _ := parseCrypto(ourKey)
	k, salt := mine.keySalt()
	enc, _ := srtp.CreateContext(k, salt, mine.Suite.Profile)
	k, salt = theirs.keySalt()
	dec, _ := srtp.CreateContext(k, salt, theirs.Suite.Profile)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(ans.Addr.Port())}
	buf := make([]byte, 1500)
	decrypted := 0
	for i := 0; i < 100 && decrypted < 3; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 7}, Payload: bytes.Repeat([]byte{0xd5}, 160)}
		plain, _ := p.Marshal()
		b, _ := enc.EncryptRTP(nil, plain, nil)
		_, _ = rtpConn.WriteToUDP(b, to)
		_ = rtpConn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, _, err := rtpConn.ReadFromUDP(buf); err == nil {
			var back rtp.Packet
			if out, err := dec.DecryptRTP(nil, buf[:n], nil); err != nil {
				t.Fatalf("voxgate's packet does not decrypt with its key: %v", err)
			} else if back.Unmarshal(out) == nil && back.PayloadType == 8 {
				decrypted++
			}
		}
	}
	if decrypted < 3 {
		t.Fatalf("%d SRTP packets back from the echo", decrypted)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 500, Timestamp: 80000, SSRC: 7}, Payload: make([]byte, 160)}
	plain, _ := p.Marshal()
	bad, _ := enc.EncryptRTP(nil, plain, nil)
	bad[len(bad)-1] ^= 0x80 // the auth tag
	_, _ = rtpConn.WriteToUDP(bad, to)
	deadline := time.Now().Add(2 * time.Second)
	for srv.ServerStats().SRTPAuthFailures == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	calls, _ := echo.snapshot()
	if n := srv.ServerStats().SRTPAuthFailures; n != 1 || calls[0].Stats().SRTPAuthFailures != 1 {
		t.Fatalf("a tampered packet: %d counted by the server, %d by the call", n, calls[0].Stats().SRTPAuthFailures)
	}

	// Hold with the same key: the answer keeps voxgate's key.
	c.send(inDialog("INVITE", 2, sdpHdr, strings.Replace(offer("RTP/SAVP", "a=crypto:"+ourKey), "a=sendrecv", "a=sendonly", 1)))
	for {
		res = c.final(3 * time.Second)
		if res.CSeq().SeqNo == 2 {
			break
		}
	}
	hold, err := parseOffer(res.Body(), bothCodecs)
	if res.StatusCode != 200 || err != nil || len(hold.Crypto) != 1 || !bytes.Equal(hold.Crypto[0].Key, theirs.Key) || hold.Direction != RecvOnly {
		t.Fatalf("hold re-INVITE: %d %v %+v", res.StatusCode, err, hold.Direction)
	}
	c.send(strings.Replace(inDialog("ACK", 2, "", ""), "branch=z9hG4bKsavp12", "branch=z9hG4bKack12", 1))
	c.send(inDialog("INVITE", 3, sdpHdr, offer("RTP/AVP")))
	for {
		res = c.final(3 * time.Second)
		if res.CSeq().SeqNo == 3 {
			break
		}
	}
	if res.StatusCode != 488 {
		t.Fatalf("plain re-INVITE under require: %d %s", res.StatusCode, res.Reason)
	}
	c.send(inDialog("BYE", 4, "", ""))

	// A late offer under require: voxgate's 200 offers RTP/SAVP with keys.
	c2 := newRawClient(t, addr)
	c2.send(guest(request("INVITE", "sip:9196@voxgate", "late1", 1, "", "")))
	res = c2.final(3 * time.Second)
	lo, err := parseOffer(res.Body(), bothCodecs)
	if res.StatusCode != 200 || err != nil || lo.Proto != "RTP/SAVP" || len(lo.Crypto) != 2 {
		t.Fatalf("late offer: %d %v %q with %d keys", res.StatusCode, err, lo.Proto, len(lo.Crypto))
	}
	// The ACK answers with the 32-bit suite of tag 2: the call takes it.
	tag, _ = res.To().Params.Get("tag")
	ack := guest(request("ACK", "sip:9196@voxgate", "late1", 1, sdpHdr, offer("RTP/SAVP", "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"+key30)))
	c2.send(strings.Replace(strings.Replace(ack, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1), "branch=z9hG4bKlate11", "branch=z9hG4bKlateack", 1))
	deadline = time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if calls, _ = echo.snapshot(); len(calls) == 2 && calls[1].SRTP() != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(calls) != 2 || calls[1].SRTP() != "AES_CM_128_HMAC_SHA1_32" {
		t.Fatalf("the late-offer call's SRTP after the ACK: %d calls", len(calls))
	}
}

// baresip 1.0's real offers (captured from its INVITEs; the keys are
// throwaway): mediaenc=srtp-mand is RTP/SAVP, mediaenc=srtp RTP/AVP, each
// with one AES_CM_128_HMAC_SHA1_80 key; every policy answers them as the
// matrix says.
func TestSRTPBaresipOffers(t *testing.T) {
	for _, tc := range []struct {
		file  string
		wants [3]string // off, offer, require
	}{
		{"baresip-srtp-mand.sdp", [3]string{"488", "RTP/SAVP", "RTP/SAVP"}},
		{"baresip-srtp.sdp", [3]string{"plain", "RTP/AVP", "RTP/AVP"}},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", "srtp", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range []SRTPPolicy{SRTPOff, SRTPOffer, SRTPRequire} {
			mo, err := parseOffer(body, []codecInfo{sipCodecs["pcmu"]})
			if err != nil || len(mo.Crypto) != 1 || mo.Crypto[0].Suite.Name != "AES_CM_128_HMAC_SHA1_80" {
				t.Fatalf("%s: %v, %d crypto lines", tc.file, err, len(mo.Crypto))
			}
			local, _, err := answerSRTP(p, &mo, nil)
			got := "plain"
			switch {
			case err != nil:
				got = "488"
			case local != nil:
				got = mo.Proto
			}
			if got != tc.wants[i] {
				t.Errorf("%s under %s: %s, want %s", tc.file, p, got, tc.wants[i])
			}
		}
	}
}

// Offers with crypto lines are outside input: whatever parses, each policy
// answers without panicking, and an SRTP answer reads back with its key.
func FuzzSRTPOffer(f *testing.F) {
	for _, name := range []string{"baresip-srtp-mand.sdp", "baresip-srtp.sdp"} {
		b, err := os.ReadFile(filepath.Join("testdata", "srtp", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(srtpOfferSDP("RTP/SAVP", "4 AEAD_AES_128_GCM inline:"+key28, "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"|2^20|1:4"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range []SRTPPolicy{SRTPOff, SRTPOffer, SRTPRequire} {
			mo, err := parseOffer(body, []codecInfo{sipCodecs["pcmu"]})
			if err != nil {
				return
			}
			local, remote, err := answerSRTP(p, &mo, nil)
			if err != nil || local == nil {
				continue
			}
			if p == SRTPOff || remote == nil {
				t.Fatalf("SRTP answered under %s", p)
			}
			l := localMedia{IP: netip.MustParseAddr("127.0.0.1"), Port: 5000, Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, Ptime: 20, Direction: SendRecv,
				Proto: mo.Proto, Crypto: []cryptoAttr{*local}}
			ans, err := parseOffer(l.marshal(&mo), []codecInfo{sipCodecs["pcmu"]})
			if err != nil || ans.Proto != mo.Proto || len(ans.Crypto) != 1 || !bytes.Equal(ans.Crypto[0].Key, local.Key) {
				t.Fatalf("our answer under %s reads back %v %q %d", p, err, ans.Proto, len(ans.Crypto))
			}
		}
	})
}
