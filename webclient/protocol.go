package webclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/voxgate/voxgate/api"
)

// The WebSocket protocol: one JSON object per message, with a "type".
//
// Browser to voxgate:
//
//	{"type":"dial","id":"c1","number":"9196","sdp":"<offer>"}  place a call with an SDP offer
//	{"type":"join","id":"c1","room":"8001","sdp":"<offer>"}    join a room by its number (routed like a dial: a PIN room asks)
//	{"type":"candidate","id":"c1","candidate":{...}}            a trickled ICE candidate (RTCIceCandidateInit)
//	{"type":"hangup","id":"c1"}                                  end the call
//	{"type":"dtmf","id":"c1","digits":"12#"}                     send digits (RFC 4733 toward SIP)
//	{"type":"mute","id":"c1","on":true}                          stop (or resume) sending the microphone
//	{"type":"offer","id":"c1","sdp":"<offer>"}                   renegotiate a call in progress (ICE restart)
//	{"type":"answer","id":"in1","sdp":"<offer>"}                 take an incoming call (with the page's SDP offer)
//	{"type":"reject","id":"in1"}                                 refuse an incoming call
//	{"type":"moderate","id":"c1","action":"mute","leg":"bob/c2"} a moderator's action in its call's room (the call
//	                                                             keyed the moderator PIN): mute, unmute, deafen,
//	                                                             undeafen, kick, admit (with a leg), lock,
//	                                                             unlock, record, stop-recording, max (with
//	                                                             "max": the most participants, 0 none);
//	                                                             answered "moderated" or "error"
//	{"type":"room-stats","id":"c1"}                              the quality of each leg in the call's room
//	{"type":"ping"}                                              keep-alive; answered with "pong"
//
// voxgate to browser:
//
//	{"type":"hello","user":"alice","leg":"alice"}       on connect (leg: the prefix of its calls' leg ids, "<leg>/<id>")
//	{"type":"incoming","id":"in1","name":"bob"}         a call for this user: ring (every open tab)
//	{"type":"answer","id":"c1","sdp":"<answer>"}         the answer to a dial
//	{"type":"candidate","id":"c1","candidate":{...}}    voxgate's trickled candidates
//	{"type":"ringing","id":"c1"} / {"type":"answered","id":"c1"}
//	{"type":"dtmf","id":"c1","digits":"5"}             digits the far end sent (a phone's RFC 4733 events)
//	{"type":"ended","id":"c1","reason":"...","code":404} the call is over (code: the SIP status of a refused call)
//	{"type":"error","id":"c1","message":"..."}          a message was refused; nothing else changes
//	{"type":"participants","id":"c1","room":"001","names":["bob","carol"],
//	 "people":[{"leg":"bob/c1","name":"bob","kind":"browser","muted":false},...]}  who is in the room, on joining
//	{"type":"joined"|"left"|"kicked"|"talking"|"stopped-talking"|"muted"|"unmuted","id":"c1","room":"001","name":"bob",
//	 "leg":"bob/c1","kind":"browser","muted":false}  one participant, keyed by its leg id (names need not be unique)
//	{"type":"moderated","id":"c1","action":"lock","leg":""} a moderation action was done
//	{"type":"room-stats","id":"c1","room":"001","locked":true,"recording":true,"stats":[{"leg","codec","loss_pct","jitter_ms"},...]}
//	{"type":"pong"}

// dtmfDigits are the DTMF digits a page may send and be sent.
const dtmfDigits = "0123456789*#ABCDabcd"

// MaxMessage is the largest message voxgate reads; larger ones close the socket.
const MaxMessage = 64 << 10

// Errors of message decoding, sent back as {"type":"error"}.
var (
	ErrBadJSON     = errors.New("malformed JSON")
	ErrUnknownType = errors.New("unknown message type")
	ErrMissing     = errors.New("missing field")
)

// Candidate is an ICE candidate as the browser's RTCIceCandidateInit.
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// Message is any message of the protocol; which fields are used depends on Type.
type Message struct {
	Type      string     `json:"type"`
	ID        string     `json:"id,omitempty"`
	Number    string     `json:"number,omitempty"`
	SDP       string     `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`
	Digits    string     `json:"digits,omitempty"`
	On        *bool      `json:"on,omitempty"`
	User      string     `json:"user,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Message   string     `json:"message,omitempty"`
	Room      string     `json:"room,omitempty"`
	Name      string     `json:"name,omitempty"`
	Names     []string   `json:"names,omitempty"`
	// People are a room's participants (participants); Leg, Kind, Muted
	// and Moderator the one a room event is about.
	People    []api.Participant `json:"people,omitempty"`
	Leg       string            `json:"leg,omitempty"`
	Kind      string            `json:"kind,omitempty"`
	Muted     *bool             `json:"muted,omitempty"`
	Moderator bool              `json:"moderator,omitempty"`
	// Action is a moderation action (moderate, moderated).
	Action string `json:"action,omitempty"`
	// Stats are the quality of a room's legs (room-stats), with the room's
	// state.
	Stats     []LegQuality `json:"stats,omitempty"`
	Locked    bool         `json:"locked,omitempty"`
	Recording bool         `json:"recording,omitempty"`
	// Max is the room's new maximum of participants (moderate "max"; 0:
	// no limit).
	Max *int `json:"max,omitempty"`
	// Code is the SIP status of a call that was refused (ended).
	Code int `json:"code,omitempty"`
}

// DecodeMessage parses and validates one message from a browser.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	need := func(ok bool, field string) error {
		if !ok {
			return fmt.Errorf("%w %q in %q", ErrMissing, field, m.Type)
		}
		return nil
	}
	switch m.Type {
	case "dial", "join":
		if err := need(m.ID != "", "id"); err != nil {
			return m, err
		}
		if m.Type == "join" {
			if err := need(m.Room != "", "room"); err != nil {
				return m, err
			}
			m.Number = m.Room // a room number goes through the dialplan like any number
		}
		if err := need(m.Number != "", "number"); err != nil {
			return m, err
		}
		if err := need(strings.HasPrefix(m.SDP, "v=0"), "sdp"); err != nil {
			return m, err
		}
	case "candidate":
		if err := need(m.ID != "" && m.Candidate != nil, "candidate"); err != nil {
			return m, err
		}
	case "answer", "offer":
		if err := need(m.ID != "", "id"); err != nil {
			return m, err
		}
		if err := need(strings.HasPrefix(m.SDP, "v=0"), "sdp"); err != nil {
			return m, err
		}
	case "reject":
		return m, need(m.ID != "", "id")
	case "hangup":
		return m, need(m.ID != "", "id")
	case "dtmf":
		if err := need(m.ID != "" && m.Digits != "", "digits"); err != nil {
			return m, err
		}
		if !validDigits(m.Digits) {
			return m, fmt.Errorf("%w: %q are not DTMF digits", ErrMissing, m.Digits)
		}
	case "mute":
		return m, need(m.ID != "" && m.On != nil, "on")
	case "moderate":
		if err := need(m.ID != "" && m.Action != "", "action"); err != nil {
			return m, err
		}
		if m.Action == "max" {
			return m, need(m.Max != nil, "max")
		}
		if !roomActions[m.Action] {
			return m, need(m.Leg != "", "leg")
		}
	case "room-stats":
		return m, need(m.ID != "", "id")
	case "ping":
	default:
		return m, fmt.Errorf("%w %q", ErrUnknownType, m.Type)
	}
	return m, nil
}
