// Package api holds the REST API's resources and errors: what the web
// server serves as JSON (rooms, legs, calls, registrations, trunks) and
// what the switchboard and the SIP side fill in. Types only: it imports
// nothing of voxgate, so every package may use it.
package api

import (
	"errors"
	"time"
)

// Errors of the API, translated to HTTP codes by the web server.
var (
	// ErrNotFound: no such room, leg or call (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change cannot be made now, e.g. recording a room that
	// already records (409).
	ErrConflict = errors.New("conflict")
)

// RoomInfo is a room as the API shows it.
type RoomInfo struct {
	Name      string `json:"name"`
	Rate      int    `json:"rate"`
	Locked    bool   `json:"locked"`
	Max       int    `json:"max"`
	Recording string `json:"recording,omitempty"`
	// Participants is how many legs the room has (len(Legs) for a room
	// here; the host's count for a remote one).
	Participants int       `json:"participants"`
	Legs         []LegInfo `json:"legs"`
	// Node is the id of the node hosting the room (cluster.node_id; "" for
	// one node alone); Remote: another node hosts it, and Legs is empty
	// (its host lists them).
	Node   string `json:"node,omitempty"`
	Remote bool   `json:"remote"`
}

// LegInfo is one participant of a room.
type LegInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Codec     string    `json:"codec"`
	Joined    time.Time `json:"joined"`
	Moderator bool      `json:"moderator"`
	Waiting   bool      `json:"waiting"` // for a moderator: muted and deaf until one comes
	Muted     bool      `json:"muted"`
	Deaf      bool      `json:"deaf"`
	Talking   bool      `json:"talking"`
	GainDB    float64   `json:"gain_db"`
	LevelDBFS float64   `json:"level_dbfs"`
	Packets   uint64    `json:"packets_received"`
	Lost      int64     `json:"packets_lost"`
	Concealed uint64    `json:"frames_concealed"`
	JitterMS  float64   `json:"jitter_ms"`
	BufferMS  float64   `json:"buffer_ms"`
	Sent      uint64    `json:"frames_sent"`
	Dropped   uint64    `json:"frames_dropped"`
}

// RoomChange changes a room; absent fields stay as they are.
type RoomChange struct {
	Locked    *bool `json:"locked"`
	Max       *int  `json:"max"`
	Recording *bool `json:"recording"`
}

// LegChange changes a leg; absent fields stay as they are.
type LegChange struct {
	Muted  *bool    `json:"muted"`
	Deaf   *bool    `json:"deaf"`
	GainDB *float64 `json:"gain_db"`
}

// DialRequest is whom to call into a room: a user, or a number through a
// trunk or through trunks tried in order (failover).
type DialRequest struct {
	User     string   `json:"user"`
	Trunk    string   `json:"trunk"`
	Trunks   []string `json:"trunks,omitempty"`
	Number   string   `json:"number"`
	CallerID string   `json:"caller_id"`
	Timeout  int      `json:"timeout"` // seconds of ringing, default 30
}

// PlayRequest is a prompt to play: a WAV file in the configured prompt
// directory, to one leg or (without Leg) to everyone in the room.
type PlayRequest struct {
	File string `json:"file"`
	Leg  string `json:"leg"`
}

// Registration is one registered SIP contact.
type Registration struct {
	User      string    `json:"user"`
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	UserAgent string    `json:"user_agent,omitempty"`
	Expires   time.Time `json:"expires"`
	// Reachable is false when contact qualify (OPTIONS) marked the
	// contact unreachable; Qualified tells whether a probe has finished.
	Reachable bool      `json:"reachable"`
	Qualified bool      `json:"qualified"`
	RTTMS     *float64  `json:"rtt_ms,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since,omitzero"`
}

// TrunkInfo is voxgate's registration at one carrier.
type TrunkInfo struct {
	Name       string    `json:"name"`
	Registered bool      `json:"registered"`
	Expires    time.Time `json:"expires,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	// Reachable is false when qualify (OPTIONS) marked the trunk down;
	// QualifyError is why its last probe failed.
	Reachable    bool      `json:"reachable"`
	Qualified    bool      `json:"qualified"`
	RTTMS        *float64  `json:"rtt_ms,omitempty"`
	QualifyError string    `json:"qualify_error,omitempty"`
	Since        time.Time `json:"since,omitzero"`
}

// CallInfo is a call in progress.
type CallInfo struct {
	ID      string    `json:"id"`
	Origin  string    `json:"origin"` // user, web, guest or trunk:<name>
	From    string    `json:"from"`
	To      string    `json:"to"`
	Action  string    `json:"action"` // what the dialplan did with it
	Room    string    `json:"room,omitempty"`
	Started time.Time `json:"started"`
}
