package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// A dead call never holds a room: sipp joins conference room 001 with a
// 6 s session interval (a test knob lowers RFC 4028's 90 s floor), sipp
// being the refresher, and then goes silent. voxgate hangs it up with a BYE
// carrying a Reason header, and the room is left empty.
func TestSippSessionTimerFreesRoom(t *testing.T) {
	peertest.Need(t, "sipp")
	g := startGatewayWith(t, nil, sip.WithTimerSettings(sip.TimerSettings{MinSE: 2 * time.Second}))
	scenario, err := filepath.Abs("../../sip/testdata/sipp/timer-peer-silent.xml")
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePorts(t, 1)
	media := peertest.FreePorts(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	done := sippInBackground(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "8001", "-m", "1", "-nostdin",
		"-timeout", "30s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
	waitRoom(t, g, "001", func(r webclient.RoomInfo) bool { return len(r.Legs) == 1 })
	r := <-done
	if r.err != nil || !strings.Contains(r.out, "Successful call") {
		t.Fatalf("sipp (expecting voxgate's BYE with a Reason): %v\n%s", r.err, tail(r.out, 25))
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.srv.Calls() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := g.srv.Calls(); n != 0 {
		t.Fatalf("%d calls still up after the session expired", n)
	}
	var rooms []webclient.RoomInfo
	g.api(t, "GET", "/api/v1/rooms", "", &rooms)
	for _, room := range rooms {
		if room.Name == "001" && len(room.Legs) > 0 {
			t.Fatalf("room 001 still holds %d legs", len(room.Legs))
		}
	}
	if !strings.Contains(g.log.String(), `reason="session expired"`) {
		t.Fatalf("no call ended for the session timer in the log")
	}
	// The call record says voxgate ended it, and why (the history is
	// written from a queue: wait for it).
	for deadline := time.Now().Add(5 * time.Second); ; {
		var page struct {
			Calls []api.CallRecord `json:"calls"`
		}
		g.api(t, "GET", "/api/v1/calls?status=ended", "", &page)
		if len(page.Calls) == 1 && page.Calls[0].Cause != nil {
			if c := page.Calls[0].Cause; c.By != "system" || !strings.Contains(c.Reason, "session timer expired") {
				t.Fatalf("call record cause %+v, want by system: session timer expired", *c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended call record: %+v", page.Calls)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baresip (no session timers, no UPDATE in its Allow) calls the echo test;
// voxgate inserts Session-Expires with itself as refresher and refreshes by
// re-INVITE at half the interval (4 s here, through the test knob), which
// baresip answers; the call stays up across the refreshes.
func TestBaresipSessionRefreshByReinvite(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGatewayWith(t, nil, sip.WithTimerSettings(sip.TimerSettings{Expires: 4 * time.Second, MinSE: 2 * time.Second}))
	b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 600, Dial: "9196"})
	refreshed := func() int {
		n := 0
		for _, l := range strings.Split(g.log.String(), "\n") {
			if strings.Contains(l, `msg="session refreshed"`) && strings.Contains(l, "method=INVITE status=200") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(15 * time.Second)
	for refreshed() < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := refreshed(); n < 2 {
		t.Fatalf("%d re-INVITE refreshes answered 200 by baresip, want 2:\n%s", n, b.Output())
	}
	t.Logf("%d refreshes by re-INVITE answered 200", refreshed())
	if g.srv.Calls() != 1 || strings.Contains(b.Output(), "terminated") {
		t.Fatalf("the call did not survive the refreshes (calls %d):\n%s", g.srv.Calls(), b.Output())
	}
	b.Command("hangup", "")
	if !b.WaitEnded(5 * time.Second) {
		t.Fatalf("call did not end:\n%s", b.Output())
	}
}
