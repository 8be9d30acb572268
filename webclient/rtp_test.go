package webclient

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// WritePayload's packets reach the browser numbered one by one, stamped with
// the clock advanced by each frame's samples (also across frames not sent),
// the marker set on the first packet after a gap, and Opus's payload type.
// The browser's packets reach the leg's handler meanwhile (under -race: the
// interceptors share the header headerCache parsed).
func TestLegRTPNumbering(t *testing.T) {
	p := pairedCall(t, benchAPI(t, "44000-44499"))
	defer p.close()
	if !newRTPSender(nil).pkt.Marker {
		t.Error("the first packet has no marker")
	}
	for range 20 {
		p.ingress(t)
	}
	got := make(chan []byte, 16)
	p.capture.Store(&got)
	frames := []struct {
		payload []byte
		samples uint32
	}{
		{[]byte{1, 2, 3}, 960}, {[]byte{4, 5}, 960}, {nil, 960}, {nil, 1920}, {[]byte{6}, 480}, {[]byte{7}, 960},
	}
	for _, f := range frames {
		if err := p.call.WritePayload(f.payload, f.samples); err != nil {
			t.Fatal(err)
		}
	}
	var pkts []rtp.Packet
	for len(pkts) < 4 {
		select {
		case b := <-got:
			var pkt rtp.Packet
			if err := pkt.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, pkt)
		case <-time.After(5 * time.Second):
			t.Fatalf("the browser got %d packets of 4", len(pkts))
		}
	}
	want := []struct {
		payload []byte
		dseq    uint16
		dts     uint32
		marker  bool
	}{
		{[]byte{1, 2, 3}, 0, 0, false}, {[]byte{4, 5}, 1, 960, false}, {[]byte{6}, 2, 960 * 5, true}, {[]byte{7}, 3, 960*5 + 480, false},
	}
	for i, w := range want {
		q := pkts[i]
		if !bytes.Equal(q.Payload, w.payload) || q.SequenceNumber-pkts[0].SequenceNumber != w.dseq ||
			q.Timestamp-pkts[0].Timestamp != w.dts || q.Marker != w.marker || q.PayloadType != 111 || q.SSRC != pkts[0].SSRC {
			t.Errorf("packet %d: payload %v seq +%d ts +%d marker %v pt %d, want %v +%d +%d %v 111",
				i, q.Payload, q.SequenceNumber-pkts[0].SequenceNumber, q.Timestamp-pkts[0].Timestamp, q.Marker, q.PayloadType,
				w.payload, w.dseq, w.dts, w.marker)
		}
	}
}

// Per packet, voxgate's side of a browser leg allocates nothing: WritePayload
// through pion to the socket, and a packet from the socket through pion's
// interceptors and the track read to the leg's handler. (The browser's peer
// in pairedCall does not allocate either. pion allocates on timers, not per
// packet: TWCC feedback every 100 ms, RTCP reports every second; those are
// a few objects in the runs below, far from one per run.)
func TestLegPacketAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	p := pairedCall(t, benchAPI(t, "44500-44999"))
	defer p.close()
	payload := make([]byte, 80)
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.call.WritePayload(payload, 960); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("WritePayload: %v allocations per packet, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.ingress(t) }); n != 0 {
		t.Errorf("browser to handler: %v allocations per packet, want 0", n)
	}
}
