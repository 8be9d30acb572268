// Package events owns what voxgate tells the outside world about calls,
// rooms, registrations and trunks: the event types, and their delivery to
// webhook endpoints. An event is written to a durable outbox (the store)
// before anything is sent, then POSTed to every endpoint that asked for its
// type, signed with the endpoint's secret (HMAC-SHA256 over the timestamp and
// the body), and retried with exponential backoff until the endpoint answers
// 2xx or the event is older than the endpoint's max_age. A restart loses
// nothing that was published before it; a slow endpoint never slows a call
// (publishing only queues).
package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/voxgate/voxgate/api"
)

// Event types. A webhook endpoint lists those it wants (patterns such as
// "call.*" or "*" allowed).
const (
	CallStarted  = "call.started"     // a call was routed by the dialplan
	CallAnswered = "call.answered"    // the call was answered (by voxgate or a callee)
	CallEnded    = "call.ended"       // the call is over, with its cause and quality
	RoomJoined   = "room.joined"      // a participant entered a room
	RoomLeft     = "room.left"        // a participant left a room (or was kicked)
	RoomTalking  = "room.talking"     // a participant started or stopped talking
	Registration = "registration"     // a SIP contact registered, refreshed its binding's end, or went away
	TrunkState   = "trunk.state"      // voxgate's registration at a carrier changed
	TrunkQualify = "trunk.qualify"    // a trunk stopped or started answering OPTIONS (qualify)
	CallTransfer = "call.transferred" // a transfer (REFER or the REST API) was done, refused or failed
	StreamStart  = "stream.started"   // a media stream to a bot connected
	StreamEnd    = "stream.ended"     // a media stream to a bot ended
)

// Types are every event type, in the order the README lists them.
var Types = []string{CallStarted, CallAnswered, CallEnded, CallTransfer, RoomJoined, RoomLeft, RoomTalking, Registration, TrunkState, TrunkQualify,
	StreamStart, StreamEnd}

// Event is one thing that happened. Its JSON form is the webhook's body:
//
//	{"id":"evt_…","type":"call.ended","time":"2026-12-02T10:00:00.123Z","data":{…}}
type Event struct {
	// ID is unique per event; a receiver uses it to ignore a delivery it
	// has seen (a retry after a lost answer). Publish fills it when empty.
	ID string `json:"id"`
	// Type is one of Types.
	Type string `json:"type"`
	// Time is when it happened (UTC). Publish fills it when zero.
	Time time.Time `json:"time"`
	// Data is the event's details: one of the *Data types below.
	Data any `json:"data"`
}

// CallData is the data of the call.* events.
type CallData struct {
	// RecordID names the call's record: GET /api/v1/calls/{record_id}.
	RecordID string `json:"record_id"`
	// CallID is the caller's leg: the SIP Call-ID or the page's call id.
	CallID string `json:"call_id"`
	Origin string `json:"origin"` // user, web, guest or trunk:<name>
	From   string `json:"from"`
	To     string `json:"to"`
	Action string `json:"action,omitempty"` // what the dialplan did: room, pin, dial, echo, playback, reject
	Room   string `json:"room,omitempty"`
	// Rule is the dialplan rule that routed the call, as file:line.
	Rule string `json:"rule,omitempty"`
	// Cause (call.ended): who ended the call and why.
	Cause *api.HangupCause `json:"cause,omitempty"`
	// Duration (call.ended): seconds from the start.
	Duration float64 `json:"duration_s,omitempty"`
	// MOS (call.ended): the lowest estimated mean opinion score of the
	// call's legs (E-model, 1 to 4.5); absent when no leg had media.
	MOS float64 `json:"mos,omitempty"`
}

// RoomData is the data of the room.* events.
type RoomData struct {
	Room    string `json:"room"`
	LegID   string `json:"leg_id"`
	Name    string `json:"name"`
	Talking *bool  `json:"talking,omitempty"` // room.talking only
}

// RegistrationData is the data of a registration event.
type RegistrationData struct {
	User    string    `json:"user"`
	Contact string    `json:"contact"`
	State   string    `json:"state"` // "registered" or "unregistered"
	Expires time.Time `json:"expires,omitzero"`
}

// TrunkData is the data of a trunk.state event.
type TrunkData struct {
	Trunk      string `json:"trunk"`
	Registered bool   `json:"registered"`
	Error      string `json:"error,omitempty"`
}

// TrunkQualifyData is the data of a trunk.qualify event.
type TrunkQualifyData struct {
	Trunk     string   `json:"trunk"`
	Reachable bool     `json:"reachable"`
	RTTMS     *float64 `json:"rtt_ms,omitempty"` // the answer's round trip (when reachable)
	Error     string   `json:"error,omitempty"`  // the last probe's failure (when not)
}

// StreamData is the data of the stream.started and stream.ended events.
type StreamData struct {
	// StreamID is the stream's id in GET /api/v1/streams; "" for a call a
	// stream rule handed to a bot.
	StreamID string `json:"stream_id,omitempty"`
	Kind     string `json:"kind"` // "call" (a stream rule or a fork) or "room"
	CallID   string `json:"call_id,omitempty"`
	Room     string `json:"room,omitempty"`
	URL      string `json:"url"`
	Framing  string `json:"framing"`
	Origin   string `json:"origin"` // "dialplan" or "api"
	// Error says why it ended when the bot failed (unreachable, gone);
	// empty for a clean end.
	Error string `json:"error,omitempty"`
	// TransferTo: the bot asked the call to go there.
	TransferTo string `json:"transfer_to,omitempty"`
}

// TransferData is the data of the call.transferred event.
type TransferData struct {
	// CallID is the transferor: the leg that sent the REFER, or whose
	// partner the REST API moved.
	CallID   string `json:"call_id"`
	To       string `json:"to,omitempty"` // the target (absent for an attended transfer)
	Attended bool   `json:"attended"`
	By       string `json:"by,omitempty"` // Referred-By, or "api"
	// Status is 200 when the transfer was done, else the SIP status of
	// the refusal (403) or failure (the target's: 486, 480, 487, ...).
	Status int    `json:"status"`
	Reason string `json:"reason"`
}

// newID returns a random event id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// body is the JSON an endpoint receives for e.
func (e *Event) body() ([]byte, error) { return json.Marshal(e) }
