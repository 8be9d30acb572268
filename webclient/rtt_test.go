package webclient

import (
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/voxgate/voxgate/audio"
)

// A browser's receiver report that echoes our sender report gives the
// call's RTT; one that echoes none leaves it unknown.
func TestCallRTTFromReports(t *testing.T) {
	c := &Call{}
	none, _ := (&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2, FractionLost: 64}}}).Marshal()
	c.readReports(none)
	if c.RTT() != 0 || c.RemoteLoss() != 0.25 {
		t.Fatalf("after a report without LSR: RTT %v, loss %v", c.RTT(), c.RemoteLoss())
	}
	sent := time.Now().Add(-100 * time.Millisecond) // our SR left 100 ms ago; the browser held it 50 ms
	rr, _ := (&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2,
		LastSenderReport: audio.NTPMiddle(sent), Delay: 65536 / 20}}}).Marshal()
	c.readReports(rr)
	if rtt := c.RTT(); rtt < 49*time.Millisecond || rtt > 10*time.Second {
		t.Fatalf("RTT %v, want at least 50 ms", rtt)
	}
}
