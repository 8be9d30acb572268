package webclient

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/internal/logging"
)

// pion's loggers are the server's: a peer connection's ICE agent logs
// through slog with component=pion and its scope.
func TestPionLogsThroughSlog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: logging.PionTrace}))
	cfg := Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, LoopbackICE: true, UDPPorts: "41000-41999"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	api, err := newAPI(&cfg, nil, log, false)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	pc.Close()
	out := buf.String()
	if !strings.Contains(out, "component=pion scope=") {
		t.Fatalf("no pion line went through slog:\n%s", out)
	}
	t.Logf("%d pion lines, e.g. %s", strings.Count(out, "component=pion"), strings.SplitN(out, "\n", 2)[0])
}
