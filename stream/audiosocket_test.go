package stream

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// asBot is an AudioSocket application as Asterisk dials it: a TCP server.
type asBot struct {
	l      net.Listener
	mu     sync.Mutex
	first  byte // the kind of the first frame
	uuid   []byte
	pcm    []int16
	digits string
	hungUp bool
	conn   net.Conn
}

func newASBot(t *testing.T) *asBot {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &asBot{l: l, first: 0xee}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conn = c
		b.mu.Unlock()
		r := bufio.NewReader(c)
		for {
			h := make([]byte, 3)
			if _, err := io.ReadFull(r, h); err != nil {
				return
			}
			p := make([]byte, binary.BigEndian.Uint16(h[1:]))
			if _, err := io.ReadFull(r, p); err != nil {
				return
			}
			b.mu.Lock()
			if b.first == 0xee {
				b.first = h[0]
			}
			switch h[0] {
			case ASUUID:
				b.uuid = p
			case ASAudio:
				for i := 0; i+1 < len(p); i += 2 {
					b.pcm = append(b.pcm, int16(binary.LittleEndian.Uint16(p[i:])))
				}
			case ASDTMF:
				b.digits += string(p)
			case ASHangup:
				b.hungUp = true
			}
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *asBot) send(t *testing.T, kind byte, payload []byte) {
	t.Helper()
	var c net.Conn
	waitFor(t, "the connection", func() bool { b.mu.Lock(); defer b.mu.Unlock(); c = b.conn; return c != nil })
	if _, err := c.Write(append(appendASFrame(nil, kind, len(payload)), payload...)); err != nil {
		t.Fatal(err)
	}
}

func slin(pcm []int16) []byte {
	var out []byte
	for _, v := range pcm {
		out = binary.LittleEndian.AppendUint16(out, uint16(v))
	}
	return out
}

func TestAudioSocketBothWays(t *testing.T) {
	b := newASBot(t)
	s, err := Dial(context.Background(), Config{URL: "tcp://" + b.l.Addr().String(), Framing: AudioSocket, CallID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := tone(1000, 8000)
	for i := 0; i < len(in); i += FrameSamples {
		s.Put(in[i:i+FrameSamples], nil)
		time.Sleep(time.Millisecond)
	}
	s.DTMF('#')
	waitFor(t, "the caller's audio and digit at the bot", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pcm) >= 4000 && b.digits == "#"
	})
	b.mu.Lock()
	first, uuid, got := b.first, b.uuid, append([]int16(nil), b.pcm[len(b.pcm)-4000:]...)
	b.mu.Unlock()
	if first != ASUUID || len(uuid) != 16 {
		t.Fatalf("first frame kind %#x, uuid %x", first, uuid)
	}
	if audio.Goertzel(got, 8000, 1000) < 100*audio.Goertzel(got, 8000, 1500) {
		t.Fatal("the bot did not hear the 1 kHz tone")
	}
	b.send(t, ASAudio, slin(tone(600, 1600)))
	waitFor(t, "the bot's audio queued", func() bool { return s.Queued() == 1600 })
	out := make([]int16, 0, 1600)
	f := make([]int16, FrameSamples)
	for s.Take(f) {
		out = append(out, f...)
	}
	if len(out) != 1600 || audio.Goertzel(out, 8000, 600) < 100*audio.Goertzel(out, 8000, 1000) {
		t.Fatalf("played %d samples without the bot's tone", len(out))
	}
	b.send(t, ASHangup, nil)
	<-s.Done()
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

func TestAudioSocketCloseAndError(t *testing.T) {
	b := newASBot(t)
	s, err := Dial(context.Background(), Config{URL: "tcp://" + b.l.Addr().String(), Framing: AudioSocket})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	waitFor(t, "the hang-up frame", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.hungUp })

	b = newASBot(t)
	s, err = Dial(context.Background(), Config{URL: "tcp://" + b.l.Addr().String(), Framing: AudioSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b.send(t, ASError, []byte{1})
	<-s.Done()
	if s.Err() == nil {
		t.Fatal("an error frame ended the stream cleanly")
	}
	if err := (&Config{URL: "tcp://x:1"}).Validate(); err == nil {
		t.Fatal("tcp:// accepted for twilio")
	}
}

func FuzzParseAudioSocket(f *testing.F) {
	f.Add([]byte{ASAudio, 0, 2, 1, 2, ASHangup, 0, 0})
	f.Add([]byte{ASUUID, 0, 16})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			_, p, rest, err := ParseAudioSocket(data)
			if err != nil {
				return
			}
			if len(rest) >= len(data) || len(p)+3+len(rest) != len(data) {
				t.Fatalf("frame of %d, rest %d of %d", len(p), len(rest), len(data))
			}
			data = rest
		}
	})
}
