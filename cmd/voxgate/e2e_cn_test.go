package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// A desk phone that offers comfort noise (sipp: PCMU and CN/8000, RFC 3389)
// sits in conference room 001 and sends nothing. While nobody talks,
// voxgate sends it a comfort noise packet when the silence starts and
// again 5 s later, instead of 50 packets of encoded silence a second;
// while a baresip phone talks, the phone gets PCMU at 50 a second; once
// baresip has left, comfort noise again. What arrives at sipp's media
// port is captured off the wire.
func TestSippComfortNoiseInRoom(t *testing.T) {
	peertest.Need(t, "sipp", "baresip")
	g := startGateway(t, noTones)
	scenario, err := filepath.Abs("../../sip/testdata/sipp/comfort-noise.xml")
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePorts(t, 1)
	media := peertest.FreePorts(t, 4)
	capture := peertest.CaptureRTP(t, media, media)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	done := sippInBackground(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "8001", "-m", "1", "-nostdin",
		"-timeout", "30s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
	legs := func(n int) { waitRoom(t, g, "001", func(r webclient.RoomInfo) bool { return len(r.Legs) == n }) }
	// since is how many packets of each kind arrived since mark.
	since := func(mark map[uint8]int) (cn, pcmu int) {
		now := capture.PayloadTypes()
		return now[13] - mark[13], now[0] - mark[0]
	}
	// count is how many packets of each kind arrived during d.
	count := func(d time.Duration) (cn, pcmu int) {
		before := capture.PayloadTypes()
		time.Sleep(d)
		return since(before)
	}
	start := capture.PayloadTypes()
	legs(1)
	time.Sleep(5600 * time.Millisecond) // alone: silence from the start, and 5 s on
	cn1, pcmu1 := since(start)

	phone := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 700, Dial: "8001"})
	legs(2)
	time.Sleep(300 * time.Millisecond)
	cn2, pcmu2 := count(1500 * time.Millisecond)
	leaving := capture.PayloadTypes()
	phone.Command("hangup", "")
	phone.WaitEnded(5 * time.Second)
	phone.Stop()
	legs(1)
	time.Sleep(300 * time.Millisecond)
	cn3, pcmu3 := count(1500 * time.Millisecond)
	cnLeft, _ := since(leaving)

	r := <-done
	if r.err != nil || !strings.Contains(r.out, "Successful call") {
		t.Fatalf("sipp (offering CN, checking the answer takes it): %v\n%s", r.err, tail(r.out, 25))
	}
	t.Logf("sipp got: alone %d CN + %d PCMU in 5.6 s; with a talker %d CN + %d PCMU in 1.5 s; %d CN since the talker left, %d CN + %d PCMU in its last 1.5 s",
		cn1, pcmu1, cn2, pcmu2, cnLeft, cn3, pcmu3)
	if cn1 != 2 || pcmu1 > 1 {
		t.Errorf("alone in the room for 5.6 s: %d comfort noise and %d PCMU packets, want 2 (at the start and 5 s on) and none", cn1, pcmu1)
	}
	if pcmu2 < 60 || cn2 > 1 {
		t.Errorf("with a talker for 1.5 s: %d PCMU and %d comfort noise packets, want about 75 and none", pcmu2, cn2)
	}
	// The talker's last frames fade (loss concealment) through a few
	// levels, each 3 dB or more apart; then the same silence, unsent.
	if cnLeft < 1 || cnLeft > 5 || cn3 > 1 || pcmu3 > 1 {
		t.Errorf("alone again: %d comfort noise packets since the talker left (want 1-5), then %d comfort noise and %d PCMU in 1.5 s (want none, one at most)", cnLeft, cn3, pcmu3)
	}
}
