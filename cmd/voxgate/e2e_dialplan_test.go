package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

const bridgePlan = `
contexts:
  internal:
    rules:
      - number: "7001"
        room: {name: bridge}
      - reject: {status: 404, reason: "Not Found"}
  from-carrier:
    rules:
      - number: "15551230099"
        pin: {room: {name: bridge, pin: "4321"}}
      - reject: {status: 404, reason: "Not Found"}
origins:
  user: internal
  trunks: {carrier: from-carrier}
`

// Journey 4, a dial-in audio bridge: a caller from the carrier's trunk (a
// baresip that authenticates as the trunk) dials the bridge's DID, hears the
// PIN prompt, keys the PIN as RFC 4733 and joins the room where a desk phone
// already is; a wrong PIN three times hangs up.
func TestDialInBridgeWithPIN(t *testing.T) {
	peertest.Need(t, "baresip")
	planPath := writePlan(t, bridgePlan)
	g := startGateway(t, func(cfg *Config) {
		f := false
		cfg.Rooms.Tones = &f
		cfg.Dialplan = planPath
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:5999", Register: &f,
			InboundUser: "carrier-in", InboundPassword: "in-pw"}}
	})
	desk := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 500, Dial: "7001"})
	caller := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carrier-in", Password: "in-pw", Codec: "pcma", Tone: 900, Dial: "15551230099"})
	time.Sleep(time.Second) // the prompt plays
	caller.Command("sndcode", "4321#")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(g.log.String(), "PIN accepted") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(g.log.String(), "PIN accepted") {
		t.Fatal("the PIN keyed as RFC 4733 was not accepted")
	}
	time.Sleep(4 * time.Second)
	caller.Command("hangup", "")
	desk.Command("hangup", "")
	caller.WaitEnded(5 * time.Second)
	desk.WaitEnded(5 * time.Second)
	caller.Stop()
	desk.Stop()
	if !strings.Contains(g.log.String(), "origin=trunk:carrier") {
		t.Error("the caller was not recognised as the carrier's trunk")
	}
	deskHears, callerHears := desk.HeardSeconds(900, 0.5), caller.HeardSeconds(500, 0.5)
	t.Logf("desk phone heard the trunk caller %.1f s, the caller heard the desk phone %.1f s (last halves)", deskHears, callerHears)
	if deskHears < 1.5 || callerHears < 1.5 {
		t.Fatalf("the bridge did not connect them: %.1f s / %.1f s", deskHears, callerHears)
	}

	// A wrong PIN three times: hung up, with the attempts logged.
	wrong := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carrier-in", Password: "in-pw", Codec: "pcmu", Tone: 900, Dial: "15551230099"})
	for i := 0; i < 3; i++ {
		time.Sleep(700 * time.Millisecond)
		wrong.Command("sndcode", "1111#")
	}
	if !wrong.WaitEnded(10*time.Second) && !wrong.WaitFor("closed", time.Second) {
		t.Fatalf("three wrong PINs did not hang up:\n%s", wrong.Output())
	}
	if n := strings.Count(g.log.String(), "wrong PIN"); n != 3 {
		t.Fatalf("%d wrong PIN attempts logged, want 3", n)
	}
}

// Toll-fraud guard: an unauthenticated caller dialling a phone number never
// reaches a trunk, even where the dialplan sends users' calls out: 403, logged.
func TestGuestNeverReachesTrunk(t *testing.T) {
	planPath := writePlan(t, `
contexts:
  internal:
    allow_trunks: true
    rules:
      - pattern: '\+(\d+)'
        dial: {trunk: carrier, number: "$1"}
  public:
    rules:
      - reject: {status: 403, reason: "Forbidden"}
origins:
  user: internal
  guest: public
`)
	g := startGateway(t, func(cfg *Config) {
		f := false
		cfg.Dialplan = planPath
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:5999", Register: &f}}
	})
	c, err := net.Dial("udp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lp := c.LocalAddr().(*net.UDPAddr).Port
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	fmt.Fprintf(c, "INVITE sip:+15551230001@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKfraud1\r\nFrom: <sip:mallory@example.org>;tag=1\r\nTo: <sip:+15551230001@x>\r\nCall-ID: fraud1\r\nCSeq: 1 INVITE\r\nContact: <sip:m@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", lp, lp, len(offer), offer)
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		line := strings.SplitN(string(buf[:n]), "\r\n", 2)[0]
		if strings.HasPrefix(line, "SIP/2.0 1") {
			continue
		}
		if !strings.HasPrefix(line, "SIP/2.0 403") {
			t.Fatalf("a guest dialling a number got %q, want 403", line)
		}
		break
	}
	if !strings.Contains(g.log.String(), "rejected by the dialplan") || !strings.Contains(g.log.String(), "context=public") {
		t.Fatalf("the refusal was not logged:\n%s", g.log.String())
	}
}
