package audio

import "testing"

// Deliver reaches the handler that is set, and nothing after Set(nil); the
// zero value drops packets.
func TestPacketDelivery(t *testing.T) {
	var d PacketDelivery
	d.Deliver(1, 160, 7, []byte{1}) // no handler: dropped
	var got []uint16
	d.Set(PacketHandlerFunc(func(p *Packet) { got = append(got, p.Seq) }))
	d.Deliver(2, 320, 7, []byte{2})
	d.Set(nil)
	d.Deliver(3, 480, 7, []byte{3})
	if len(got) != 1 || got[0] != 2 {
		t.Fatalf("delivered %v, want [2]", got)
	}
}
