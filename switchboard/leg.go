package switchboard

import (
	"context"
	"errors"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
)

// Leg is one call as the switchboard sees it, whether a desk phone, a trunk
// or a browser page placed it or answered it: *sip.Call and *webclient.Call
// both satisfy it (cmd/voxgate pins that at compile time).
type Leg interface {
	bridge.Leg
	// Caller is how the caller is shown to a callee and matched by rules:
	// the SIP From user, or the signed-in browser user.
	Caller() string
	// Dialed is the number or user the caller dialled.
	Dialed() string
	// Ringing tells the caller the far end rings (180, or a page message).
	Ringing() error
	// Answer answers an incoming call (an outgoing one is answered already).
	Answer(ctx context.Context) error
	// Reject refuses an unanswered call with a final SIP status and reason.
	Reject(status int, reason string)
	// Hangup ends the call.
	Hangup(ctx context.Context)
	// OnDTMF sets the function called for each digit the caller keys
	// (RFC 4733, SIP INFO or a page's keypad); nil stops it.
	OnDTMF(f func(digit rune))
	// SendDTMF sends digits toward the caller.
	SendDTMF(digits string) error
}

// ReasonedHangup is a leg that can tell its caller why voxgate ended its
// call (a page shows it); the others are hung up plainly.
type ReasonedHangup interface {
	HangupBecause(ctx context.Context, reason string)
}

// KickedReason is the reason a leg removed from its room by a moderator
// or the API is given (ReasonedHangup).
const KickedReason = "removed by a moderator"

// RoomWatcher is a leg that shows its room (a browser page): who is in it
// and who joins, leaves, talks or is muted. Legs that cannot show it (a desk
// phone) simply do not implement it.
type RoomWatcher interface {
	// Participants tells who is in the room, on joining.
	Participants(room string, people []Participant)
	// Notify tells of an event about one participant: "joined", "left",
	// "kicked", "talking", "stopped-talking", "muted" or "unmuted".
	Notify(typ, room string, p Participant)
}

// SelfMuter is a leg whose caller mutes its own microphone apart from the
// room (a page's mute button): the room shows it muted while it is.
type SelfMuter interface {
	// OnSelfMute sets the function called when the caller mutes or
	// unmutes itself; nil stops it.
	OnSelfMute(f func(on bool))
}

// Participant is one leg in a room as a page shows it (package api holds
// it, so that the web side fills it without importing this package).
type Participant = api.Participant

// Dialer places calls out: to the devices of a user (registered phones,
// open pages) and to numbers through trunks. The SIP side and the web side
// each give one; the switchboard rings them all at once.
type Dialer interface {
	// Devices returns a way to ring each device of user this dialer
	// reaches now (none: the user is not reachable this way).
	Devices(user string) []Device
	// Trunks names the trunks this dialer calls out through.
	Trunks() []string
	// DialTrunk calls number through trunk and returns the answered call.
	DialTrunk(ctx context.Context, trunk, number, callerID string) (Leg, error)
}

// Device rings one device as from and returns the answered call; it gives
// up when ctx ends.
type Device func(ctx context.Context, from string) (Leg, error)

// Errors of the switchboard.
var (
	// ErrNotReachable: the user has no open page and no registered phone.
	ErrNotReachable = errors.New("user has no open page and no registered phone")
	// ErrUnknownTrunk: no dialer calls out through that trunk.
	ErrUnknownTrunk = errors.New("unknown trunk")
)

// sipStatus is an error that says which final SIP status the caller should
// get (a callee's rejection, a page that declined).
type sipStatus interface {
	error
	SIPStatus() (int, string)
}
