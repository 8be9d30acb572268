package switchboard

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
)

// hostViews is the host's side of RoomViews: it keeps, by token, the
// command handler the switchboard gave and what the watcher was told.
type hostViews struct {
	mu   sync.Mutex
	do   map[string]func(RoomCommand) RoomViewEvent
	told map[string][]RoomViewEvent
}

func (h *hostViews) RoomElsewhere(context.Context, CascadeRoom) Device { return nil }

func (h *hostViews) WatchRoom(context.Context, string, func(RoomViewEvent)) (func(RoomCommand) error, func(), error) {
	return nil, nil, errors.New("not on the host")
}

func (h *hostViews) ServeView(_ context.Context, token, self string, do func(RoomCommand) RoomViewEvent) ViewWatcher {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.do[token] = do
	return viewRecorder{h, token, self}
}

func (h *hostViews) events(token string) []RoomViewEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]RoomViewEvent(nil), h.told[token]...)
}

// command does cmd on token's view and returns the error of the host's
// answer as the entering node sees it.
func (h *hostViews) command(token string, cmd RoomCommand) error {
	h.mu.Lock()
	do := h.do[token]
	h.mu.Unlock()
	cmd.ID = newID("cmd_")
	e := do(cmd)
	if e.Type != "result" || e.Command != cmd.ID {
		return fmt.Errorf("the host answered %+v to command %s", e, cmd.ID)
	}
	return resultError(e)
}

type viewRecorder struct {
	h           *hostViews
	token, self string
}

func (v viewRecorder) Participants(room string, people []Participant) {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	v.h.told[v.token] = append(v.h.told[v.token], RoomViewEvent{Type: "participants", Room: room, Self: v.self, People: people})
}

func (v viewRecorder) Notify(typ, room string, p Participant) {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	v.h.told[v.token] = append(v.h.told[v.token], RoomViewEvent{Type: typ, Room: room, Self: v.self, P: p})
}

func (v viewRecorder) RoomState(room string, st RoomState) {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	v.h.told[v.token] = append(v.h.told[v.token], RoomViewEvent{Type: "stats", Room: room, Self: v.self, State: &st})
}

// On the room's node, a cascade leg with a view is shown the room as a
// page (itself a browser among the participants, told who joins); the
// commands of its view are done only when it entered as a moderator.
func TestHostServesRoomView(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	h := &hostViews{do: map[string]func(RoomCommand) RoomViewEvent{}, told: map[string][]RoomViewEvent{}}
	sb.cluster = h
	join := func(l *fakeLeg, cr CascadeRoom) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			sb.HostRoom(context.Background(), l, cr, "cascade")
		}()
		return done
	}
	phone := newFakeLeg("p1", "alice", "7002")
	pdone := call(sb, phone, "user")
	eventually(t, "the phone in the room", func() bool { return inRoom(sb, "bridge", "p1") })
	plain := newFakeLeg("c1", "bob", "bridge")
	c1done := join(plain, CascadeRoom{Name: "bridge", View: "view_plain"})
	eventually(t, "the plain view told the participants", func() bool {
		for _, e := range h.events("view_plain") {
			if e.Type == "participants" && len(e.People) == 2 && e.Self == "c1" {
				for _, p := range e.People {
					if p.Leg == "c1" && p.Kind == "browser" {
						return true
					}
				}
			}
		}
		return false
	})
	if err := h.command("view_plain", RoomCommand{Leg: "p1", Kick: true}); !errors.Is(err, ErrNotModerator) {
		t.Fatalf("a plain participant's kick: %v, want ErrNotModerator", err)
	}
	if !inRoom(sb, "bridge", "p1") {
		t.Fatal("a plain participant's view kicked the phone")
	}
	mod := newFakeLeg("c2", "carol", "bridge")
	c2done := join(mod, CascadeRoom{Name: "bridge", Moderator: true, View: "view_mod"})
	eventually(t, "the plain view told that the moderator joined", func() bool {
		for _, e := range h.events("view_plain") {
			if e.Type == "joined" && e.P.Leg == "c2" {
				return true
			}
		}
		return false
	})
	if err := h.command("view_mod", RoomCommand{Leg: "p1", Change: muteChange(true)}); err != nil {
		t.Fatalf("the moderator's mute: %v", err)
	}
	if !legOf(t, sb, "bridge", "p1").Muted {
		t.Fatal("the moderator's view did not mute the phone")
	}
	// The room itself: the plain view may not lock it or set its maximum,
	// the moderator's may.
	on, five, off := true, 5, false
	if err := h.command("view_plain", RoomCommand{Room: &api.RoomChange{Locked: &on}}); !errors.Is(err, ErrNotModerator) {
		t.Fatalf("a plain participant's lock: %v, want ErrNotModerator", err)
	}
	if r, _ := sb.Room("bridge"); r.Locked {
		t.Fatal("a plain participant's view locked the room")
	}
	if err := h.command("view_mod", RoomCommand{Room: &api.RoomChange{Locked: &on, Max: &five}}); err != nil {
		t.Fatalf("the moderator's lock: %v", err)
	}
	if r, _ := sb.Room("bridge"); !r.Locked || r.Max != 5 {
		t.Fatalf("after the moderator's lock and max 5 the room is %+v", r)
	}
	// Every viewStateEvery, each view is told the room's state and its
	// legs' reception.
	deadline := time.Now().Add(10 * time.Second)
	for stated := false; !stated; {
		for _, e := range h.events("view_plain") {
			if e.Type == "stats" && e.Room == "bridge" && e.Self == "c1" && e.State.Locked && e.State.Max == 5 && len(e.State.Legs) == 3 {
				for _, l := range e.State.Legs {
					stated = stated || (l.Leg == "p1" && l.Codec != "")
				}
			}
		}
		if !stated && time.Now().After(deadline) {
			t.Fatalf("the plain view was not told the locked room's state: %+v", h.events("view_plain"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.command("view_mod", RoomCommand{Room: &api.RoomChange{Locked: &off}}); err != nil {
		t.Fatalf("the moderator's unlock: %v", err)
	}
	if r, _ := sb.Room("bridge"); r.Locked {
		t.Fatal("the moderator's view did not unlock the room")
	}
	// A caller keying the room's PIN (7000 opens "bridge") is let in by the
	// moderator's view, not the plain one's.
	held := newFakeLeg("h1", "dave", "7000")
	hdone := call(sb, held, "user")
	eventually(t, "dave at the PIN", func() bool { return len(sb.PINCallers()) == 1 })
	if err := h.command("view_plain", RoomCommand{Leg: "h1", Admit: true}); !errors.Is(err, ErrNotModerator) {
		t.Fatalf("a plain participant's admit: %v, want ErrNotModerator", err)
	}
	if len(sb.PINCallers()) != 1 {
		t.Fatal("a plain participant's view let the PIN caller in")
	}
	if err := h.command("view_mod", RoomCommand{Leg: "h1", Admit: true}); err != nil {
		t.Fatalf("the moderator's admit: %v", err)
	}
	eventually(t, "dave let into the room", func() bool { return inRoom(sb, "bridge", "h1") })
	held.hangUp()
	waitEnded(t, hdone)
	if err := h.command("view_mod", RoomCommand{Leg: "p1", Kick: true}); err != nil {
		t.Fatalf("the moderator's kick: %v", err)
	}
	waitEnded(t, pdone)
	plain.hangUp()
	mod.hangUp()
	waitEnded(t, c1done)
	waitEnded(t, c2done)
}

// On the entering node, a view shows the page its own leg under its id
// here, keeps the list for moderation, and sends commands about the page's
// own leg under the host's id.
func TestRemoteViewMapsOwnLeg(t *testing.T) {
	w := &recordWatcher{}
	var sent []RoomCommand
	v := &remoteView{room: "bridge", self: "bob/c1", w: w}
	v.send = func(c RoomCommand) error { // the host does it and answers
		sent = append(sent, c)
		go v.handle(RoomViewEvent{Type: "result", Room: "bridge", Self: "sip-1", Command: c.ID})
		return nil
	}
	v.handle(RoomViewEvent{Type: "participants", Room: "bridge", Self: "sip-1", People: []Participant{
		{Leg: "p1", Name: "alice", Kind: "phone"}, {Leg: "sip-1", Name: "bob", Kind: "phone", Moderator: true}}})
	v.handle(RoomViewEvent{Type: "joined", Room: "bridge", Self: "sip-1", P: Participant{Leg: "p2", Name: "dave"}})
	v.handle(RoomViewEvent{Type: "muted", Room: "bridge", Self: "sip-1", P: Participant{Leg: "p2", Name: "dave", Muted: true}})
	v.handle(RoomViewEvent{Type: "kicked", Room: "bridge", Self: "sip-1", P: Participant{Leg: "p1", Name: "alice"}})
	if len(w.people) != 2 || w.people[1].Leg != "bob/c1" || w.people[1].Kind != "browser" {
		t.Fatalf("the page was told %+v", w.people)
	}
	info := v.info()
	if len(info.Legs) != 2 || info.Legs[0].ID != "bob/c1" || !info.Legs[0].Moderator || info.Legs[1].ID != "p2" || !info.Legs[1].Muted {
		t.Fatalf("the view's room: %+v", info.Legs)
	}
	if !v.moderator() {
		t.Fatal("the page is not a moderator in its view")
	}
	// The host's state: kept for room-stats (its own leg renamed), not
	// passed to the page as an event; the page's own reception is the one
	// measured here once its call is bridged to the host.
	v.handle(RoomViewEvent{Type: "stats", Room: "bridge", Self: "sip-1", State: &RoomState{Locked: true, Max: 4, Recording: "/rec/bridge.wav", Legs: []LegReception{
		{Leg: "p2", Codec: "PCMU", Packets: 990, Lost: 10, JitterMS: 3.5}, {Leg: "sip-1", Codec: "PCMA", Packets: 1000}}}})
	if len(w.events) != 3 {
		t.Fatalf("the page was told %v, want no stats event", w.events)
	}
	info = v.info()
	want := []api.LegInfo{{ID: "bob/c1", Name: "bob", Moderator: true, Codec: "PCMA", Packets: 1000},
		{ID: "p2", Name: "dave", Muted: true, Codec: "PCMU", Packets: 990, Lost: 10, JitterMS: 3.5}}
	if !info.Locked || info.Max != 4 || info.Recording != "/rec/bridge.wav" || !reflect.DeepEqual(info.Legs, want) {
		t.Fatalf("the view's room after the host's stats: %+v, want legs %+v", info, want)
	}
	v.pair = fakePair{bridge.LegStats{ID: "bob/c1", Codec: "opus", Network: audio.ReceiveReport{Received: 400, Lost: 2, Jitter: 1500 * time.Microsecond}}}
	if l := v.info().Legs[0]; l.Codec != "opus" || l.Packets != 400 || l.Lost != 2 || l.JitterMS != 1.5 {
		t.Fatalf("the page's own leg once bridged: %+v, want its reception here", l)
	}
	sb, _ := testBoard(t, testPlan)
	sb.views = map[string]*remoteView{"bob/c1": v}
	if ok, err := sb.remoteCommand("bridge", RoomCommand{Leg: "bob/c1", Kick: true}); !ok || err != nil || len(sent) != 1 || sent[0].Leg != "sip-1" {
		t.Fatalf("a command about the page's own leg: %v %v, sent %+v", ok, err, sent)
	}
	if _, err := sb.ChangeLeg("bridge", "p2", muteChange(false)); err != nil || len(sent) != 2 || sent[1].Leg != "p2" {
		t.Fatalf("ChangeLeg on the remote room: %v, sent %+v", err, sent)
	}
	on := true
	if r, err := sb.ChangeRoom("bridge", api.RoomChange{Locked: &on}); err != nil || !r.Remote || len(sent) != 3 || sent[2].Room == nil || !*sent[2].Room.Locked {
		t.Fatalf("ChangeRoom on the remote room: %+v %v, sent %+v", r, err, sent)
	}
	if _, err := sb.Admit("bridge", "p2"); err != nil || len(sent) != 4 || !sent[3].Admit || sent[3].Leg != "p2" {
		t.Fatalf("Admit on the remote room: %v, sent %+v", err, sent)
	}
	if _, err := sb.ChangeRoom("other", api.RoomChange{Locked: &on}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("ChangeRoom on a room nobody here views: %v, want not found", err)
	}
	if ok, _ := sb.remoteCommand("other", RoomCommand{Leg: "p2"}); ok {
		t.Fatal("a command for a room nobody here views was sent")
	}
}

// fakePair is a call's bridge to the host with these legs.
type fakePair []bridge.LegStats

func (p fakePair) Stats() bridge.RoomStats { return bridge.RoomStats{Legs: p} }

// recordWatcher keeps what a page was told.
type recordWatcher struct {
	people []Participant
	events []string
}

func (r *recordWatcher) Participants(_ string, people []Participant) { r.people = people }
func (r *recordWatcher) Notify(typ, _ string, p Participant) {
	r.events = append(r.events, typ+":"+p.Leg)
}

// muteChange is a change that mutes or unmutes.
func muteChange(on bool) api.LegChange { return api.LegChange{Muted: &on} }

// A page's command to a room hosted elsewhere, round trip: the entering
// node sends it under an id, the host does it or refuses it and answers
// that id, and the entering node returns the host's answer as the host's
// error (found by errors.Is as the REST API needs it), or ErrNoAnswer
// when the host stays silent; answers are matched by id, not by order.
func TestRemoteCommandRoundTrip(t *testing.T) {
	host, _ := testBoard(t, testPlan)
	host.recordDir = t.TempDir() // the moderator records the room
	h := &hostViews{do: map[string]func(RoomCommand) RoomViewEvent{}, told: map[string][]RoomViewEvent{}}
	host.cluster = h
	phone := newFakeLeg("p1", "alice", "7002")
	pdone := call(host, phone, "user")
	eventually(t, "the phone in the room", func() bool { return inRoom(host, "bridge", "p1") })
	hosted := func(l *fakeLeg, cr CascadeRoom) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			host.HostRoom(context.Background(), l, cr, "cascade")
		}()
		return done
	}
	mod, plain := newFakeLeg("c2", "carol", "bridge"), newFakeLeg("c3", "dave", "bridge")
	modDone := hosted(mod, CascadeRoom{Name: "bridge", Moderator: true, View: "view_mod"})
	plainDone := hosted(plain, CascadeRoom{Name: "bridge", View: "view_plain"})
	eventually(t, "both cascade legs in the room", func() bool { return inRoom(host, "bridge", "c2") && inRoom(host, "bridge", "c3") })

	// view is the entering node's view of token for page leg self, which
	// believes itself a moderator (the host decides); the host's answer
	// comes back through the view's events as over Redis.
	view := func(token, self, hostLeg string) *remoteView {
		v := &remoteView{room: "bridge", self: self, w: &recordWatcher{}}
		v.send = func(c RoomCommand) error {
			h.mu.Lock()
			do := h.do[token]
			h.mu.Unlock()
			go v.handle(do(c))
			return nil
		}
		v.handle(RoomViewEvent{Type: "participants", Room: "bridge", Self: hostLeg, People: []Participant{{Leg: "p1", Name: "alice"}, {Leg: hostLeg, Name: "page", Moderator: true}}})
		return v
	}
	entering, _ := testBoard(t, testPlan)
	entering.views = map[string]*remoteView{"bob/c1": view("view_mod", "bob/c1", "c2")}
	on := true
	if _, err := entering.ChangeLeg("bridge", "p1", muteChange(true)); err != nil {
		t.Fatalf("the moderator's mute: %v", err)
	}
	if !legOf(t, host, "bridge", "p1").Muted {
		t.Fatal("the host did not mute the phone before it answered")
	}
	if r, err := entering.ChangeRoom("bridge", api.RoomChange{Locked: &on}); err != nil || !r.Locked || !r.Remote {
		t.Fatalf("the moderator's lock: %+v %v, want the room locked at once (the answer's state)", r, err)
	}
	err := entering.Kick("bridge", "gone")
	if !errors.Is(err, api.ErrNotFound) || err.Error() != `leg "gone" in room "bridge": not found` {
		t.Fatalf("kicking a leg that left: %v, want the host's not found", err)
	}
	// The room records from its first participant (record_dir).
	_, err = entering.ChangeRoom("bridge", api.RoomChange{Recording: &on})
	if !errors.Is(err, api.ErrConflict) || err.Error() != `room "bridge" records already: conflict` {
		t.Fatalf("recording a room that records already: %v, want the host's conflict", err)
	}
	off := false
	if r, err := entering.ChangeRoom("bridge", api.RoomChange{Recording: &off}); err != nil || r.Recording != "" {
		t.Fatalf("the moderator's stop-recording: %+v %v", r, err)
	}
	if r, err := entering.ChangeRoom("bridge", api.RoomChange{Recording: &on}); err != nil || r.Recording == "" {
		t.Fatalf("the moderator's record: %+v %v", r, err)
	}

	// A view whose page believes it moderates while the host knows better.
	entering.views = map[string]*remoteView{"eve/c1": view("view_plain", "eve/c1", "c3")}
	err = entering.Kick("bridge", "p1")
	if !errors.Is(err, ErrNotModerator) || !errors.Is(err, api.ErrForbidden) || err.Error() != ErrNotModerator.Error() {
		t.Fatalf("a plain participant's kick: %v, want the host's ErrNotModerator (forbidden)", err)
	}
	if !inRoom(host, "bridge", "p1") {
		t.Fatal("the plain participant's kick was done")
	}

	// A host that does not answer: ErrNoAnswer after the view's wait.
	silent := &remoteView{room: "bridge", self: "bob/c1", w: &recordWatcher{}, wait: 100 * time.Millisecond,
		send: func(RoomCommand) error { return nil }}
	silent.handle(RoomViewEvent{Type: "participants", Room: "bridge", Self: "c2", People: []Participant{{Leg: "c2", Moderator: true}}})
	entering.views = map[string]*remoteView{"bob/c1": silent}
	if err := entering.Kick("bridge", "p1"); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("a command the host does not answer: %v, want ErrNoAnswer", err)
	}
	if len(silent.pending) != 0 {
		t.Fatalf("%d commands still wait after the timeout", len(silent.pending))
	}

	// Two commands at once whose answers cross: each gets its own.
	crossed := &remoteView{room: "bridge", self: "bob/c1", w: &recordWatcher{}}
	crossed.send = func(c RoomCommand) error {
		go func() {
			if c.Leg == "slow" { // answered after the fast one's
				time.Sleep(200 * time.Millisecond)
				crossed.handle(commandResult("bridge", "c2", c, fmt.Errorf("leg %q: %w", c.Leg, api.ErrNotFound)))
				return
			}
			crossed.handle(commandResult("bridge", "c2", c, nil))
		}()
		return nil
	}
	crossed.handle(RoomViewEvent{Type: "participants", Room: "bridge", Self: "c2", People: []Participant{{Leg: "c2", Moderator: true}}})
	entering.views = map[string]*remoteView{"bob/c1": crossed}
	errs := make(chan error, 2)
	go func() { errs <- entering.Kick("bridge", "slow") }()
	if err := entering.Kick("bridge", "fast"); err != nil {
		t.Fatalf("the fast command got %v, want its own (nil) answer", err)
	}
	if err := <-errs; !errors.Is(err, api.ErrNotFound) || err.Error() != `leg "slow": not found` {
		t.Fatalf("the slow command got %v, want its own refusal", err)
	}

	phone.hangUp()
	mod.hangUp()
	plain.hangUp()
	waitEnded(t, pdone)
	waitEnded(t, modDone)
	waitEnded(t, plainDone)
}
