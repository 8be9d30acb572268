package api

import (
	"errors"
	"time"
)

// StreamRequest starts a media stream to a bot on a live call (POST
// /api/v1/calls/{id}/streams: a fork, the bot hears the call) or on a room
// (POST /api/v1/rooms/{room}/streams: the bot is a participant). The
// fields are the dialplan's stream options.
type StreamRequest struct {
	URL        string            `json:"url"`
	Framing    string            `json:"framing,omitempty"` // twilio (default), audiosocket or raw
	Rate       int               `json:"rate,omitempty"`    // raw: 8000 (default), 16000, 24000 or 48000
	Tracks     string            `json:"tracks,omitempty"`  // inbound (default), outbound or both
	Headers    map[string]string `json:"headers,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// StreamInfo is a media stream started on a room or a call (by the
// dialplan's room option or the API).
type StreamInfo struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // "room" or "call"
	Room    string    `json:"room,omitempty"`
	Call    string    `json:"call,omitempty"`
	URL     string    `json:"url"`
	Framing string    `json:"framing"`
	Rate    int       `json:"rate"`
	Tracks  string    `json:"tracks"`
	Origin  string    `json:"origin"` // "dialplan" or "api"
	Started time.Time `json:"started"`
	// Connected: the bot is on now (a room stream reconnects after a fault).
	Connected  bool `json:"connected"`
	Reconnects int  `json:"reconnects"`
}

// ErrUnreachable: a bot could not be reached or refused the stream (502).
var ErrUnreachable = errors.New("the bot cannot be reached")
