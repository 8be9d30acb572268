package switchboard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

// outcome collects a transfer's result.
type outcome chan error

func (o outcome) done(err error) { o <- err }

func (o outcome) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-o:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the transfer reported no outcome")
		return nil
	}
}

// connected reports whether a digit keyed on a reaches b (a pair relays them).
func connected(t *testing.T, a, b *fakeLeg, digit string) {
	t.Helper()
	a.key(digit, 0)
	eventually(t, "a digit crosses the call", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return strings.Contains(b.sent, digit)
	})
}

// setUpCall has alice call bob and waits until both are up.
func setUpCall(t *testing.T, sb *Switchboard, bob *fakeDevice) (*fakeLeg, <-chan struct{}) {
	t.Helper()
	alice := newFakeLeg("c1", "alice", "bob")
	done := call(sb, alice, "user")
	eventually(t, "alice's call is bridged", func() bool { return sb.pairOf("c1") != nil })
	return alice, done
}

// Blind transfer by either side: the transferor is hung up, its partner is
// connected with the target (digits cross), and the call record of the
// original caller lives on until the new pair ends.
func TestBlindTransfer(t *testing.T) {
	for _, byCallee := range []bool{true, false} {
		name := "by the caller"
		if byCallee {
			name = "by the callee"
		}
		t.Run(name, func(t *testing.T) {
			bobDev, carolDev := &fakeDevice{}, &fakeDevice{}
			sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}}})
			alice, done := setUpCall(t, sb, bobDev)
			bob := bobDev.leg
			transferor, transferee := bob, alice
			if !byCallee {
				transferor, transferee = alice, bob
			}
			o := outcome(make(chan error, 1))
			if err := sb.StartTransfer(transferor.ID(), Transfer{To: "carol"}, o.done); err != nil {
				t.Fatal(err)
			}
			if err := o.wait(t); err != nil {
				t.Fatalf("transfer failed: %v", err)
			}
			eventually(t, "the transferor is hung up", func() bool { _, _, e := transferor.state(); return e == "hangup" })
			carol := carolDev.leg
			if carol == nil {
				t.Fatal("carol was not called")
			}
			if _, _, e := transferee.state(); e != "" {
				t.Fatalf("the transferee ended: %s", e)
			}
			connected(t, transferee, carol, "4")
			connected(t, carol, transferee, "6")
			// The call that goes on is listed: alice's own, or bob's once alice left.
			eventually(t, "the transferee's call is listed", func() bool {
				calls := sb.Calls()
				return len(calls) == 1 && calls[0].ID == transferee.ID()
			})
			carol.hangUp()
			eventually(t, "the transferee is hung up when carol leaves", func() bool { _, _, e := transferee.state(); return e == "hangup" })
			waitEnded(t, done)
		})
	}
}

// A target that does not answer leaves the call as it was, and the
// outcome says why (the callee's status, else 480).
func TestBlindTransferTargetFails(t *testing.T) {
	bobDev, carolDev := &fakeDevice{}, &fakeDevice{err: rejection{486, "Busy Here"}}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}}})
	alice, done := setUpCall(t, sb, bobDev)
	bob := bobDev.leg
	for _, to := range []string{"carol", "dave"} { // busy; nobody to ring
		o := outcome(make(chan error, 1))
		if err := sb.StartTransfer(bob.ID(), Transfer{To: to}, o.done); err != nil {
			t.Fatal(err)
		}
		var te *TransferError
		err := o.wait(t)
		want := map[string]int{"carol": 486, "dave": 480}[to]
		if !errors.As(err, &te) || te.Status != want {
			t.Fatalf("%s: outcome %v, want %d", to, err, want)
		}
	}
	for _, l := range []*fakeLeg{alice, bob} {
		if _, _, e := l.state(); e != "" {
			t.Fatalf("%s ended: %s", l.ID(), e)
		}
	}
	connected(t, alice, bob, "1")
	alice.hangUp()
	waitEnded(t, done)
	eventually(t, "bob is hung up", func() bool { _, _, e := bob.state(); return e == "hangup" })
}

// The dialplan decides where a transfer may go: through the transferor's
// context, a number without a route, one the dialplan rejects, or an
// action that is not a person or a room is refused with 403 before
// anything starts.
func TestBlindTransferForbidden(t *testing.T) {
	const plan = `
contexts:
  internal:
    rules:
      - number: "9196"
        echo: {}
      - number: "666"
        reject: {status: 403, reason: "Premium numbers"}
      - pattern: '[a-z]+'
        dial: {user: "$number", timeout: 1}
origins: {user: internal}
`
	bobDev := &fakeDevice{}
	sb, _ := testBoard(t, plan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}}})
	alice, done := setUpCall(t, sb, bobDev)
	for to, why := range map[string]string{"+4930123": "may not reach", "666": "Premium numbers", "9196": "not to echo"} {
		err := sb.StartTransfer(bobDev.leg.ID(), Transfer{To: to}, func(error) { t.Errorf("%s: an outcome", to) })
		var te *TransferError
		if !errors.As(err, &te) || te.Status != 403 || !strings.Contains(te.Reason, why) {
			t.Errorf("%s: %v, want 403 with %q", to, err, why)
		}
	}
	if err := sb.StartTransfer("nosuch", Transfer{To: "bob"}, nil); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown leg: %v", err)
	}
	connected(t, alice, bobDev.leg, "2")
	alice.hangUp()
	waitEnded(t, done)
}

// A transfer to a room puts the transferee in the room; a participant of a
// room who transfers to a user hands its place to the user.
func TestTransferAndRooms(t *testing.T) {
	bobDev, carolDev := &fakeDevice{}, &fakeDevice{}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}}})
	alice, done := setUpCall(t, sb, bobDev)
	bob := bobDev.leg
	o := outcome(make(chan error, 1))
	if err := sb.StartTransfer(bob.ID(), Transfer{To: "7002"}, o.done); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(t); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice is in the room", func() bool { return inRoom(sb, "bridge", alice.ID()) })
	eventually(t, "bob is hung up", func() bool { _, _, e := bob.state(); return e == "hangup" })

	// alice, now in the room, hands her place to carol.
	if err := sb.StartTransfer(alice.ID(), Transfer{To: "7002"}, nil); err == nil || !strings.Contains(err.Error(), "only to a user") {
		t.Fatalf("room to room: %v", err)
	}
	o = outcome(make(chan error, 1))
	if err := sb.StartTransfer(alice.ID(), Transfer{To: "carol"}, o.done); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(t); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol is in the room", func() bool { return carolDev.leg != nil && inRoom(sb, "bridge", carolDev.leg.ID()) })
	eventually(t, "alice is hung up", func() bool { _, _, e := alice.state(); return e == "hangup" })
	waitEnded(t, done)
	carolDev.leg.hangUp()
	eventually(t, "the room empties", func() bool { return !inRoom(sb, "bridge", carolDev.leg.ID()) })
}

// Attended: alice talks to bob (call 1) and to carol (call 2); her transfer
// of call 1 replacing call 2 connects bob with carol and ends both of her
// legs.
func TestAttendedTransfer(t *testing.T) {
	bobDev, carolDev := &fakeDevice{}, &fakeDevice{}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}}})
	alice1, done1 := setUpCall(t, sb, bobDev)
	alice2 := newFakeLeg("c2", "alice", "carol")
	done2 := call(sb, alice2, "user")
	eventually(t, "alice's second call is bridged", func() bool { return sb.pairOf("c2") != nil })
	bob, carol := bobDev.leg, carolDev.leg
	if err := sb.StartTransfer("c1", Transfer{Replaces: "nosuch"}, nil); err == nil {
		t.Fatal("a Replaces naming no call was accepted")
	}
	o := outcome(make(chan error, 1))
	if err := sb.StartTransfer("c1", Transfer{Replaces: "c2"}, o.done); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(t); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLeg{alice1, alice2} {
		eventually(t, l.ID()+" is hung up", func() bool { _, _, e := l.state(); return e == "hangup" })
	}
	waitEnded(t, done1)
	waitEnded(t, done2)
	connected(t, bob, carol, "3")
	connected(t, carol, bob, "9")
	bob.hangUp()
	eventually(t, "carol is hung up", func() bool { _, _, e := carol.state(); return e == "hangup" })
}

// A transferor that hangs up right after asking (as phones do after the
// 202) does not end the call: the transferee waits for the target and is
// connected with it; when the target fails instead, the transferee is hung
// up.
func TestBlindTransferAfterTheTransferorLeft(t *testing.T) {
	for _, fails := range []bool{false, true} {
		name := "target answers"
		if fails {
			name = "target fails"
		}
		t.Run(name, func(t *testing.T) {
			bobDev := &fakeDevice{}
			carolDev := &fakeDevice{delay: 200 * time.Millisecond}
			if fails {
				carolDev.err = rejection{486, "Busy Here"}
			}
			sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}}})
			alice, done := setUpCall(t, sb, bobDev)
			bob := bobDev.leg
			o := outcome(make(chan error, 1))
			if err := sb.StartTransfer(alice.ID(), Transfer{To: "carol"}, o.done); err != nil {
				t.Fatal(err)
			}
			alice.hangUp() // before carol answers
			waitEnded(t, done)
			if _, _, e := bob.state(); e != "" {
				t.Fatalf("bob was hung up with the transferor: %s", e)
			}
			err := o.wait(t)
			if fails {
				if err == nil {
					t.Fatal("the transfer succeeded")
				}
				eventually(t, "bob is hung up", func() bool { _, _, e := bob.state(); return e == "hangup" })
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			connected(t, bob, carolDev.leg, "8")
			bob.hangUp()
			eventually(t, "carol is hung up", func() bool { _, _, e := carolDev.leg.state(); return e == "hangup" })
		})
	}
}

// A transfer to a PIN-protected room asks the transferee for the PIN, as
// when it dials the room itself.
func TestTransferToAPINRoom(t *testing.T) {
	bobDev := &fakeDevice{}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}}})
	alice, done := setUpCall(t, sb, bobDev)
	o := outcome(make(chan error, 1))
	if err := sb.StartTransfer(bobDev.leg.ID(), Transfer{To: "7000"}, o.done); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(t); err != nil {
		t.Fatal(err)
	}
	alice.waitKeys(t)
	if inRoom(sb, "bridge", alice.ID()) {
		t.Fatal("alice is in the room before keying the PIN")
	}
	alice.key("1234#", 10*time.Millisecond)
	eventually(t, "alice is in the room", func() bool { return inRoom(sb, "bridge", alice.ID()) })
	alice.hangUp()
	waitEnded(t, done)
}

// Config.Transfers hears how every transfer ended: refused at once (403),
// failed at the target (486) and done (200), each once, with who asked.
func TestTransferOutcomes(t *testing.T) {
	bobDev, carolDev, daveDev := &fakeDevice{}, &fakeDevice{}, &fakeDevice{err: rejection{486, "Busy Here"}}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bobDev}, "carol": {carolDev}, "dave": {daveDev}}})
	outcomes := make(chan TransferOutcome, 10)
	sb.transfers = func(o TransferOutcome) { outcomes <- o } // before any transfer starts
	_, done := setUpCall(t, sb, bobDev)
	bob := bobDev.leg
	next := func() TransferOutcome {
		t.Helper()
		select {
		case o := <-outcomes:
			return o
		case <-time.After(5 * time.Second):
			t.Fatal("no transfer outcome")
			return TransferOutcome{}
		}
	}
	if err := sb.StartTransfer(bob.ID(), Transfer{To: "9196", By: "sip:bob@test"}, func(error) {}); err == nil {
		t.Fatal("a transfer to the echo started")
	}
	if o := next(); o.Status != 403 || o.CallID != bob.ID() || o.To != "9196" || o.By != "sip:bob@test" || o.At.IsZero() {
		t.Errorf("refused: %+v", o)
	}
	o1 := outcome(make(chan error, 1))
	if err := sb.StartTransfer(bob.ID(), Transfer{To: "dave"}, o1.done); err != nil {
		t.Fatal(err)
	}
	_ = o1.wait(t)
	if o := next(); o.Status != 486 || o.To != "dave" {
		t.Errorf("target busy: %+v", o)
	}
	o2 := outcome(make(chan error, 1))
	if err := sb.StartTransfer(bob.ID(), Transfer{To: "carol"}, o2.done); err != nil {
		t.Fatal(err)
	}
	if err := o2.wait(t); err != nil {
		t.Fatal(err)
	}
	if o := next(); o.Status != 200 || o.To != "carol" || o.Attended {
		t.Errorf("done: %+v", o)
	}
	select {
	case o := <-outcomes:
		t.Errorf("an outcome too many: %+v", o)
	case <-time.After(100 * time.Millisecond):
	}
	carolDev.leg.hangUp()
	waitEnded(t, done)
}
