package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// srtpFor sets a user's srtp policy in a test gateway's config.
func srtpFor(user, policy string) func(*Config) {
	return func(cfg *Config) {
		for i := range cfg.Users {
			if cfg.Users[i].Name == user {
				cfg.Users[i].SRTP = policy
			}
		}
	}
}

// baresip calls the echo test with SDES SRTP: RTP/SAVP to a user whose
// policy is require, RTP/AVP with a=crypto (best effort) to one whose
// policy is offer. The tone comes back (baresip's own recording of what it
// decrypted), and what reaches baresip's RTP ports on the wire is not plain
// RTP: no packet carries a bare 160-byte G.711 frame (each has an auth tag),
// and the payloads decoded as G.711 carry no tone.
func TestBaresipSRTPEcho(t *testing.T) {
	peertest.Need(t, "baresip")
	for _, tc := range []struct{ mediaenc, policy string }{
		{"srtp-mand", "require"},
		{"srtp", "offer"},
	} {
		t.Run(tc.mediaenc+"-to-"+tc.policy, func(t *testing.T) {
			g := startGateway(t, srtpFor("alice", tc.policy))
			const freq = 600
			b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: freq, Dial: "9196", MediaEnc: tc.mediaenc})
			capture := peertest.CaptureRTP(t, b.RTPMin, b.RTPMax)
			start := time.Now()
			time.Sleep(4 * time.Second) // the call's length
			end := time.Now()
			b.Command("hangup", "")
			if !b.WaitEnded(5 * time.Second) {
				t.Fatalf("call did not end:\n%s", b.Output())
			}
			b.Stop()
			heard := toneIn(b.Received(), freq, 0.5, 3.5)
			wire := capture.Between(start, end)
			onWire := audio.ToneSeconds(wire, 8000, freq, 0.2)
			sizes, pts := capture.PayloadSizes(), capture.PayloadTypes()
			t.Logf("baresip heard the echo %.1fs of 3s; on the wire: payload types %v, payload sizes %v, tone decoded as plain G.711 %.2fs of %.1fs",
				heard, pts, sizes, onWire, float64(len(wire))/8000)
			if heard < 2 {
				t.Errorf("echo over SRTP: baresip heard %.1fs of tone in 3s", heard)
			}
			if pts[0] < 100 {
				t.Errorf("only %d audio packets captured at baresip's ports %d-%d", pts[0], b.RTPMin, b.RTPMax)
			}
			if sizes[160] != 0 {
				t.Errorf("%d packets with a bare 160-byte payload: plain RTP on the wire", sizes[160])
			}
			if onWire > 0.1 {
				t.Errorf("the tone decodes from the wire (%.2fs): the media is not encrypted", onWire)
			}
			log := g.log.String()
			if !strings.Contains(log, "srtp=AES_CM_128_HMAC_SHA1") && !strings.Contains(log, "srtp=AEAD_AES_128_GCM") {
				t.Errorf("voxgate did not log an SRTP suite for the call")
			}
			if strings.Contains(log, "inline:") {
				t.Errorf("voxgate logged an SDES key")
			}
			deadline := time.Now().Add(3 * time.Second)
			for g.router.ended() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// baresip 1.0 sends one 16-byte plain RTCP packet as the call
			// starts, which voxgate drops (SRTCPAuthFailures); no RTP is lost.
			st, ok := g.router.lastStats()
			t.Logf("voxgate's call stats: %+v", st)
			if !ok || st.SRTPAuthFailures != 0 || st.PacketsReceived < 100 || st.RTCPReceived == 0 {
				t.Errorf("voxgate's call stats: %+v", st)
			}
			// /metrics has the same counts, by kind.
			fams := g.metrics(t)
			rtpDrops := metricValue(fams, "voxgate_sip_srtp_auth_failures_total", "kind", "rtp")
			rtcpDrops := metricValue(fams, "voxgate_sip_srtp_auth_failures_total", "kind", "rtcp")
			if rtpDrops != 0 || rtcpDrops != float64(st.SRTCPAuthFailures) {
				t.Errorf("/metrics: srtp drops rtp %v, rtcp %v; the call's stats %d, %d", rtpDrops, rtcpDrops, st.SRTPAuthFailures, st.SRTCPAuthFailures)
			}
		})
	}
}

// Policies refuse what they do not take with 488: a plain offer to a user
// whose policy is require, an RTP/SAVP offer to one whose policy is off.
func TestBaresipSRTPRefused(t *testing.T) {
	peertest.Need(t, "baresip")
	for _, tc := range []struct{ mediaenc, policy string }{
		{"", "require"},
		{"srtp-mand", "off"},
	} {
		t.Run(fmt.Sprintf("%q-to-%s", tc.mediaenc, tc.policy), func(t *testing.T) {
			g := startGateway(t, srtpFor("alice", tc.policy))
			p := peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", MediaEnc: tc.mediaenc}
			b := peertest.StartBaresip(t, peertest.BaresipOptions{Account: p.Account(g.addr), Dial: "sip:9196@" + g.addr})
			if !b.WaitFor("488 Not Acceptable Here", 10*time.Second) {
				t.Fatalf("baresip was not refused 488:\n%s", b.Output())
			}
		})
	}
}

// voxgate offers SRTP when it calls a phone: a plain phone (alice) dials
// bob, whose policy is offer (voxgate offers RTP/AVP with a=crypto; bob's
// baresip has mediaenc=srtp) or require (RTP/SAVP; mediaenc=srtp-mand).
// Each hears the other's tone; bob's RTP ports see no plain RTP.
func TestBaresipSRTPVoxgateOffers(t *testing.T) {
	peertest.Need(t, "baresip")
	for _, tc := range []struct {
		mediaenc, policy string
		suites           []string // sip.srtp_suites
		want             string   // the suite baresip takes
	}{
		{"srtp", "offer", nil, "AES_CM_128_HMAC_SHA1_80"},
		{"srtp-mand", "require", nil, "AES_CM_128_HMAC_SHA1_80"},
		{"srtp-mand", "require", []string{"AEAD_AES_128_GCM"}, "AEAD_AES_128_GCM"},
		{"srtp", "offer", []string{"AES_CM_128_HMAC_SHA1_32"}, "AES_CM_128_HMAC_SHA1_32"},
	} {
		t.Run(tc.policy+"-to-"+tc.mediaenc+"-"+tc.want, func(t *testing.T) {
			g := startGateway(t, func(cfg *Config) {
				srtpFor("bob", tc.policy)(cfg)
				cfg.SIP.SRTPSuites = tc.suites
			})
			const aliceHz, bobHz = 520.0, 830.0
			bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true, MediaEnc: tc.mediaenc})
			capture := peertest.CaptureRTP(t, bob.RTPMin, bob.RTPMax)
			alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "bob"})
			start := time.Now()
			time.Sleep(4 * time.Second) // the call's length
			end := time.Now()
			alice.Command("hangup", "")
			if !alice.WaitEnded(5*time.Second) || !bob.WaitEnded(5*time.Second) {
				t.Fatalf("call did not end:\nalice:\n%s\nbob:\n%s", alice.Output(), bob.Output())
			}
			alice.Stop()
			bob.Stop()
			aliceHeard, bobHeard := toneIn(alice.Received(), bobHz, 0.5, 3.5), toneIn(bob.Received(), aliceHz, 0.5, 3.5)
			wire := capture.Between(start, end)
			onWire := audio.ToneSeconds(wire, 8000, aliceHz, 0.2)
			sizes, pts := capture.PayloadSizes(), capture.PayloadTypes()
			t.Logf("alice heard bob %.1fs, bob heard alice %.1fs (of 3s); at bob's ports: payload types %v, sizes %v, alice's tone decoded as plain G.711 %.2fs",
				aliceHeard, bobHeard, pts, sizes, onWire)
			if aliceHeard < 2 || bobHeard < 2 {
				t.Errorf("audio through a plain-to-SRTP call: alice heard %.1fs, bob %.1fs", aliceHeard, bobHeard)
			}
			if pts[0] < 100 || sizes[160] != 0 || onWire > 0.1 {
				t.Errorf("plain RTP at bob's ports, or too few packets")
			}
			log := g.log.String()
			if !strings.Contains(log, "msg=\"outgoing call answered\"") || !strings.Contains(log, "srtp="+tc.want) {
				t.Errorf("voxgate's call to bob was not SRTP with %s", tc.want)
			}
		})
	}
}

// Hold and resume re-INVITE an SRTP call (RTP/SAVP under require): both are
// answered, the keys hold, and after the resume SRTP flows again both ways
// with nothing dropped (baresip 1.0 stops its own recording at hold, so
// the packets are counted: voxgate's received ones all decrypted).
func TestBaresipSRTPHoldResume(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, srtpFor("alice", "require"))
	b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 600, Dial: "9196", MediaEnc: "srtp-mand"})
	capture := peertest.CaptureRTP(t, b.RTPMin, b.RTPMax)
	time.Sleep(2 * time.Second)
	b.Command("hold", "")
	time.Sleep(2 * time.Second)
	b.Command("resume", "")
	tResume := time.Now()
	time.Sleep(3 * time.Second)
	after := capture.PacketsBetween(tResume.Add(500*time.Millisecond), time.Now())
	b.Command("hangup", "")
	if !b.WaitEnded(5 * time.Second) {
		t.Fatalf("call did not end:\n%s", b.Output())
	}
	b.Stop()
	log := g.log.String()
	if n := strings.Count(log, `msg=re-INVITE`); n < 2 {
		t.Errorf("voxgate answered %d re-INVITEs, want hold and resume", n)
	}
	deadline := time.Now().Add(3 * time.Second)
	for g.router.ended() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := g.router.lastStats()
	sizes := capture.PayloadSizes()
	t.Logf("packets at baresip after resume %d; payload sizes %v; voxgate's stats %+v", after, sizes, st)
	if after < 100 || sizes[160] != 0 {
		t.Errorf("after resume: %d packets at baresip, %d plain-sized", after, sizes[160])
	}
	if st.SRTPAuthFailures != 0 || st.PacketsReceived < 200 { // about 5 s of sending
		t.Errorf("voxgate dropped %d SRTP packets, received %d", st.SRTPAuthFailures, st.PacketsReceived)
	}
	if strings.Contains(b.Output(), "488") {
		t.Errorf("a re-INVITE was refused:\n%s", b.Output())
	}
}
