package switchboard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/voxgate/voxgate/dialplan"
)

// fakeBot is a bot with no network.
type fakeBot struct {
	mu       sync.Mutex
	digits   string
	puts     int
	err      error
	transfer string
	done     chan struct{}
	once     sync.Once
}

func (b *fakeBot) Rate() int        { return 8000 }
func (b *fakeBot) Put(_, _ []int16) { b.mu.Lock(); b.puts++; b.mu.Unlock() }
func (b *fakeBot) Take(dst []int16) bool {
	return false
}
func (b *fakeBot) Done() <-chan struct{} { return b.done }
func (b *fakeBot) TransferTo() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.transfer
}
func (b *fakeBot) DTMF(d rune)  { b.mu.Lock(); b.digits += string(d); b.mu.Unlock() }
func (b *fakeBot) Err() error   { b.mu.Lock(); defer b.mu.Unlock(); return b.err }
func (b *fakeBot) Close() error { b.hangUp(nil); return nil }
func (b *fakeBot) hangUp(err error) {
	b.once.Do(func() {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
		close(b.done)
	})
}

const streamPlan = `
contexts:
  a:
    rules:
      - number: '600'
        stream: {url: 'ws://bot', then: '700', parameters: {who: $caller}}
      - number: '601'
        stream: {url: 'ws://bot'}
      - number: '602'
        stream: {url: 'ws://bot', on_error: '700'}
      - number: '603'
        stream: {url: 'ws://bot', then: '799'}
      - number: '700'
        room: {name: after}
      - number: '799'
        reject: {status: 486}
origins:
  user: a
`

func TestStreamAction(t *testing.T) {
	sb, logs := testBoard(t, streamPlan)
	var (
		mu   sync.Mutex
		bots []*fakeBot
		fail error
		seen dialplan.StreamAction
	)
	sb.streams = func(ctx context.Context, a dialplan.StreamAction, id, caller, dialed string) (BotStream, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = a
		if fail != nil {
			return nil, fail
		}
		b := &fakeBot{done: make(chan struct{})}
		bots = append(bots, b)
		return b, nil
	}
	bot := func() *fakeBot {
		var b *fakeBot
		eventually(t, "a stream", func() bool {
			mu.Lock()
			defer mu.Unlock()
			if len(bots) > 0 {
				b = bots[len(bots)-1]
			}
			return b != nil
		})
		return b
	}

	t.Run("the bot closes: then", func(t *testing.T) {
		leg := newFakeLeg("s1", "alice", "600")
		done := call(sb, leg, "user")
		b := bot()
		eventually(t, "audio to the bot", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.puts > 3 })
		leg.waitKeys(t)
		leg.key("42", 0)
		eventually(t, "digits at the bot", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.digits == "42" })
		if answered, _, _ := leg.state(); !answered || seen.Parameters["who"] != "alice" {
			t.Fatalf("answered %v, parameters %v", answered, seen.Parameters)
		}
		b.hangUp(nil)
		eventually(t, "the call in room after", func() bool { return inRoom(sb, "after", "s1") })
		leg.hangUp()
		waitEnded(t, done)
	})
	t.Run("the bot closes: hang up", func(t *testing.T) {
		mu.Lock()
		bots = nil
		mu.Unlock()
		leg := newFakeLeg("s2", "alice", "601")
		done := call(sb, leg, "user")
		bot().hangUp(nil)
		waitEnded(t, done)
		if _, _, ended := leg.state(); ended != "hangup" {
			t.Fatalf("ended %q", ended)
		}
	})
	t.Run("the bot fails: on_error", func(t *testing.T) {
		mu.Lock()
		bots = nil
		mu.Unlock()
		leg := newFakeLeg("s3", "alice", "602")
		done := call(sb, leg, "user")
		bot().hangUp(errors.New("the bot went away"))
		eventually(t, "the call in room after", func() bool { return inRoom(sb, "after", "s3") })
		leg.hangUp()
		waitEnded(t, done)
		if !strings.Contains(logs.String(), "media stream failed") {
			t.Fatal("no log line")
		}
	})
	t.Run("the bot transfers: to a room", func(t *testing.T) {
		mu.Lock()
		bots = nil
		mu.Unlock()
		leg := newFakeLeg("s6", "alice", "601")
		done := call(sb, leg, "user")
		b := bot()
		b.mu.Lock()
		b.transfer = "700"
		b.mu.Unlock()
		b.hangUp(nil)
		eventually(t, "the call in room after", func() bool { return inRoom(sb, "after", "s6") })
		leg.hangUp()
		waitEnded(t, done)
	})
	t.Run("then: a refusal hangs the answered call up", func(t *testing.T) {
		mu.Lock()
		bots = nil
		mu.Unlock()
		leg := newFakeLeg("s7", "alice", "603")
		done := call(sb, leg, "user")
		bot().hangUp(nil)
		waitEnded(t, done)
		if answered, _, ended := leg.state(); !answered || ended != "hangup" {
			t.Fatalf("answered %v, ended %q", answered, ended)
		}
	})
	t.Run("refused: 503", func(t *testing.T) {
		mu.Lock()
		fail = errors.New("connection refused")
		mu.Unlock()
		leg := newFakeLeg("s4", "alice", "601")
		waitEnded(t, call(sb, leg, "user"))
		if answered, status, _ := leg.state(); answered || status != 503 {
			t.Fatalf("answered %v status %d", answered, status)
		}
		if !strings.Contains(logs.String(), "the bot cannot be reached") {
			t.Fatal("no log line")
		}
	})
	t.Run("refused: on_error", func(t *testing.T) {
		leg := newFakeLeg("s5", "alice", "602")
		done := call(sb, leg, "user")
		eventually(t, "the call in room after", func() bool { return inRoom(sb, "after", "s5") })
		leg.hangUp()
		waitEnded(t, done)
	})
}

const roomStreamPlan = `
contexts:
  a:
    rules:
      - number: '800'
        room: {name: scribe, stream: {url: 'ws://bot', framing: raw, rate: 16000}}
origins:
  user: a
`

// A room's bot: one for the room however many callers enter at once; a
// refused first try and a bot that goes away are tried again (backoff,
// counted); the bot hears the room; when the room empties the bot goes.
func TestRoomStreamLifecycle(t *testing.T) {
	sb, logs := testBoard(t, roomStreamPlan)
	var (
		mu    sync.Mutex
		bots  []*fakeBot
		dials int
	)
	sb.streams = func(ctx context.Context, a dialplan.StreamAction, id, caller, dialed string) (BotStream, error) {
		mu.Lock()
		defer mu.Unlock()
		dials++
		if dials == 1 {
			return nil, errors.New("connection refused")
		}
		if a.Rate != 16000 || dialed != "scribe" {
			t.Errorf("stream options %+v for %q", a, dialed)
		}
		b := &fakeBot{done: make(chan struct{})}
		bots = append(bots, b)
		return b, nil
	}
	connected := func(n int) func() bool {
		return func() bool {
			st := sb.Streams()
			mu.Lock()
			defer mu.Unlock()
			return len(st) == 1 && st[0].Connected && len(bots) == n
		}
	}
	l1, l2 := newFakeLeg("r1", "alice", "800"), newFakeLeg("r2", "bob", "800")
	d1, d2 := call(sb, l1, "user"), call(sb, l2, "user")
	eventually(t, "the room's bot after a refused try", connected(1))
	mu.Lock()
	b := bots[0]
	mu.Unlock()
	eventually(t, "the room's audio at the bot", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.puts > 5 })
	b.hangUp(errors.New("the bot went away"))
	eventually(t, "the bot again", connected(2))
	if n := sb.Stats().StreamReconnects; n != 2 {
		t.Errorf("%d reconnects, want 2", n)
	}
	if !strings.Contains(logs.String(), "room stream: the bot went away: reconnecting") {
		t.Error("no log line for the reconnect")
	}
	l1.hangUp()
	waitEnded(t, d1)
	if len(sb.Streams()) != 1 {
		t.Fatal("the bot left with one caller still in the room")
	}
	l2.hangUp()
	waitEnded(t, d2)
	eventually(t, "the bot gone with the room's last caller", func() bool { return len(sb.Streams()) == 0 })
	mu.Lock()
	last := bots[1]
	mu.Unlock()
	select {
	case <-last.done:
	default:
		t.Fatal("the bot's stream was not closed")
	}
}
