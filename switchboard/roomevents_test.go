package switchboard

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Config.RoomEvents hears who joins and leaves a room, by display name.
func TestRoomEventsObserved(t *testing.T) {
	p, err := dialplan.Parse("plan.yaml", []byte(testPlan), dialplan.Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	sb := New(Config{Plan: p, Logger: slog.New(slog.DiscardHandler),
		Rooms: bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone},
		RoomEvents: func(e bridge.Event, name string) {
			mu.Lock()
			seen = append(seen, e.Room+" "+e.Type+" "+e.Leg+" "+name)
			mu.Unlock()
		}})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Close(ctx)
	}()
	a, b := newFakeLeg("a1", "alice", "7002"), newFakeLeg("b1", "bob", "7002")
	adone, bdone := call(sb, a, "user"), call(sb, b, "user")
	eventually(t, "both in the room", func() bool { return inRoom(sb, "bridge", "a1") && inRoom(sb, "bridge", "b1") })
	a.hangUp()
	waitEnded(t, adone)
	has := func(s string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(seen, s)
		}
	}
	eventually(t, "alice joined", has("bridge joined a1 alice"))
	eventually(t, "bob joined", has("bridge joined b1 bob"))
	eventually(t, "alice left", has("bridge left a1 alice"))
	b.hangUp()
	waitEnded(t, bdone)
	eventually(t, "bob left", has("bridge left b1 bob"))
}
