package bridge

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// A lost Opus packet is rebuilt from the in-band FEC of the packet after
// it when that one is here: on speech with one packet in seven lost, the
// lost frames come out closer to what was sent than with concealment.
func TestOpusFECRecoversLostPacket(t *testing.T) {
	w, err := audio.ReadWAVFile(filepath.Join("..", "testdata", "speech", "speech16k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	speech := w.Samples[:16000*10]
	// What a peer asked for FEC (useinbandfec=1) sends: SILK at 24 kbit/s (at
	// 16 kbit/s libopus leaves the redundancy out)
	// with redundancy for 20 % loss.
	enc, err := opus.NewEncoder(16000, opus.EncoderOptions{Bitrate: 24000, FEC: true, PacketLoss: 20})
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for off := 0; off+320 <= len(speech); off += 320 {
		p, err := enc.Encode(nil, speech[off:off+320])
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	lost := func(i int) bool { return i%7 == 3 }
	// The reference: every packet decoded, none lost.
	dec, _ := opus.NewDecoder(16000)
	var clean [][]int16
	for _, p := range pkts {
		f, _ := dec.Decode(nil, p)
		clean = append(clean, f)
	}
	run := func(noFEC bool) (float64, uint64) {
		in, err := newIngress(newMemLeg("a", opc), 16000, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		in.noFEC = noFEC
		now := time.Unix(100, 0)
		var out [][]int16
		for i, p := range pkts {
			if !lost(i) {
				in.jb.Push(uint16(i), uint32(i*960), 5, p, now)
			}
			f := in.pull(now)
			out = append(out, append([]int16(nil), f...))
			now = now.Add(FrameDuration)
		}
		// Align: the buffer delays playout by a packet or two.
		lag, best := 0, -1
		for d := range 5 {
			same := 0
			for i := d; i < len(out); i++ {
				if len(out[i]) == 320 && string(int16Bytes(out[i])) == string(int16Bytes(clean[i-d])) {
					same++
				}
			}
			if same > best {
				lag, best = d, same
			}
		}
		// Waveforms of a rebuilt frame need not match (SILK's redundancy
		// is a coarser encoding): what is measured is the log-spectral
		// distance, over 5 ms sub-frames' energies, in dB.
		var dist float64
		var n int
		for i := lag; i < len(out); i++ {
			if !lost(i-lag) || len(out[i]) != 320 {
				continue
			}
			for sub := 0; sub < 320; sub += 80 {
				var eo, ec float64
				for k := sub; k < sub+80; k++ {
					eo += float64(out[i][k]) * float64(out[i][k])
					ec += float64(clean[i-lag][k]) * float64(clean[i-lag][k])
				}
				dist += math.Abs(10 * math.Log10((eo+80)/(ec+80)))
				n++
			}
		}
		return dist / float64(n), in.fecs
	}
	withFEC, n := run(false)
	withPLC, _ := run(true)
	t.Logf("lost frames against the clean decode: %.2f dB mean level error rebuilt from FEC (%d packets), %.2f dB concealed", withFEC, n, withPLC)
	// Losses in the pauses of the speech are silence, not rebuilt.
	if n < uint64(len(pkts)/7)*8/10 {
		t.Fatalf("only %d of %d lost packets rebuilt from FEC", n, len(pkts)/7)
	}
	if withFEC > withPLC*0.7 {
		t.Fatalf("FEC (%.2f dB off) not clearly better than concealment (%.2f dB off)", withFEC, withPLC)
	}
}

func int16Bytes(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

// lossyLeg reports what its far end's RTCP says it lost.
type lossyLeg struct {
	*memLeg
	loss float64
}

func (l *lossyLeg) RemoteLoss() float64 { return l.loss }

// The far end's loss reports tune the encoders' FEC: a leg's own encoder
// to its own report, the shared one to the worst of its listeners.
func TestRoomTunesFECToReportedLoss(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "fec", Rate: 16000})
	r.noDoze = true // its legs send nothing: a room that dozes does not tune
	a := &lossyLeg{memLeg: newMemLeg("a", opc), loss: 0.12}
	b := &lossyLeg{memLeg: newMemLeg("b", opc), loss: 0.02}
	for _, l := range []Leg{a, b} {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(100, 0)
	for range fecEvery {
		r.Tick(now)
		now = now.Add(FrameDuration)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	got := map[string]int{}
	for _, m := range r.members {
		got[m.id] = m.loss
	}
	g := r.members[0].group
	if got["a"] != 12 || got["b"] != 2 || g.lastLoss != 12 {
		t.Fatalf("encoders tuned for %v %% and the shared one for %d %%, want a 12, b 2, shared 12", got, g.lastLoss)
	}
}
