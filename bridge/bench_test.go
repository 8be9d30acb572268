package bridge

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// discardLeg is a leg whose sends go nowhere; the benchmark feeds its
// jitter buffer directly.
type discardLeg struct {
	id    string
	codec audio.Codec
	done  chan struct{}
}

func (l *discardLeg) ID() string                           { return l.id }
func (l *discardLeg) Codec() audio.Codec                   { return l.codec }
func (l *discardLeg) Done() <-chan struct{}                { return l.done }
func (l *discardLeg) WritePayload([]byte, uint32) error    { return nil }
func (l *discardLeg) SetPacketHandler(audio.PacketHandler) {}

// testEncoder returns the registry's encoder for c at the codec's own rate.
func testEncoder(t testing.TB, c audio.Codec) audio.Encoder {
	t.Helper()
	info, err := lookupCodec(c)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := info.NewEncoder(info.PCMRate)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// feed is a leg's pre-encoded input: a second of packets, replayed.
type feed struct {
	pkts [][]byte
	seq  uint16
	ts   uint32
}

func makeFeed(b testing.TB, c audio.Codec, freq float64, talking bool) *feed {
	enc := testEncoder(b, c)
	if c == opc && !talking { // a browser that is not talking sends DTX
		e, err := opus.NewEncoder(48000, opus.EncoderOptions{DTX: true})
		if err != nil {
			b.Fatal(err)
		}
		enc = e
	}
	rate := enc.Rate()
	tone := audio.Tone{Rate: rate, Freq: freq, Level: 0.1}
	pcm := make([]int16, rate/50)
	f := &feed{}
	for i := 0; i < 50; i++ {
		if talking {
			tone.Fill(pcm)
		} else {
			clear(pcm)
		}
		p, err := enc.Encode(nil, pcm)
		if err != nil {
			b.Fatal(err)
		}
		f.pkts = append(f.pkts, p)
	}
	return f
}

// benchRoom runs ticks of a room of legs, each fed one packet per tick.
// A micro-benchmark: packets go straight into the jitter buffers and the
// legs drop what they are sent, so it counts the jitter buffer, decode,
// mix and encode only (no sockets, RTP or SRTP); mix-legs/core is how many
// legs that work for would fill a core. cmd/voxgate's E2E benchmarks
// measure whole legs.
func benchRoom(b *testing.B, rate int, codecs []audio.Codec, talking int) {
	r, err := NewRoom(RoomConfig{Name: "bench", Rate: rate, ManualClock: true, Logger: quiet(), JoinTone: NoTone, LeaveTone: NoTone})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	feeds := make([]*feed, len(codecs))
	for k, c := range codecs {
		l := &discardLeg{id: fmt.Sprint(k), codec: c, done: make(chan struct{})}
		if err := r.Join(l, JoinOptions{}); err != nil {
			b.Fatal(err)
		}
		feeds[k] = makeFeed(b, c, 300+37*float64(k), k < talking)
	}
	now := time.Unix(100, 0)
	step := func() {
		for k, m := range r.members {
			f := feeds[k]
			m.in.mu.Lock()
			m.in.jb.Push(f.seq, f.ts, 1, f.pkts[int(f.seq)%len(f.pkts)], now)
			m.in.mu.Unlock()
			f.seq++
			f.ts += uint32(m.in.codec.Rate / 50)
		}
		r.Tick(now)
		now = now.Add(20 * time.Millisecond)
	}
	for i := 0; i < 100; i++ { // reach the steady state
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	perTick := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perTick.Microseconds()), "us/tick")
	b.ReportMetric(float64(20*time.Millisecond)/float64(perTick)*float64(len(codecs)), "mix-legs/core")
}

func repeat(c audio.Codec, n int) []audio.Codec {
	out := make([]audio.Codec, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// A 50-leg room of Opus legs, 3 talking (the rest send DTX silence).
func BenchmarkRoom50Opus3Talking(b *testing.B) { benchRoom(b, 16000, repeat(opc, 50), 3) }

// Every leg talking: each has its own mix and its own encode.
func BenchmarkRoomOpusAllTalking(b *testing.B) { benchRoom(b, 16000, repeat(opc, 20), 20) }

// The same with G.711 desk phones.
func BenchmarkRoomG711AllTalking(b *testing.B) { benchRoom(b, 16000, repeat(pcmu, 20), 20) }

// The same with wideband G.722 desk phones.
func BenchmarkRoomG722AllTalking(b *testing.B) {
	benchRoom(b, 16000, repeat(audio.Codec{Name: "G722", Rate: 8000}, 20), 20)
}

// A 1:1 call between a desk phone (PCMU) and a browser (Opus), bridged at
// 8 kHz so neither side needs a resampler. Two legs: mix-legs/core counts
// legs, not calls (BenchmarkE2EPCMUToOpusWebRTC measures whole calls).
func BenchmarkOneToOnePCMUOpus(b *testing.B) {
	benchRoom(b, 8000, []audio.Codec{pcmu, opc}, 2)
}

// 1,000 rooms with nobody in them: their clocks are stopped, so they cost
// nothing. Reported as the share of one core used over a second (each
// iteration sleeps a second: run with -benchtime 2x).
func BenchmarkIdleRooms(b *testing.B) {
	var rooms []*Room
	for i := 0; i < 1000; i++ {
		r, err := NewRoom(RoomConfig{Name: fmt.Sprint(i), Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		rooms = append(rooms, r)
	}
	defer func() {
		for _, r := range rooms {
			r.Close()
		}
	}()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, t0 := cpu(), time.Now()
		time.Sleep(time.Second)
		b.ReportMetric(100*float64(cpu()-c0)/float64(time.Since(t0)), "%core")
	}
}
