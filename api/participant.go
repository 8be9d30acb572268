package api

import "time"

// Participant is one leg in a room as a page shows it: keyed by the leg's
// id, since two legs may carry the same name.
type Participant struct {
	Leg  string `json:"leg"`  // the leg's id (the REST API's leg id)
	Name string `json:"name"` // the caller's name
	// Kind is "browser" for a leg that shows its room (a page), "phone"
	// for any other (a desk phone, a trunk, a SIP client over WebSocket).
	Kind string `json:"kind"`
	// Muted: the room does not mix its audio (muted by itself or a
	// moderator, or waiting for a moderator).
	Muted     bool `json:"muted"`
	Moderator bool `json:"moderator,omitempty"`
}

// PINCaller is a caller keying the PIN of a room (not in it yet).
type PINCaller struct {
	Leg   string    `json:"leg"`
	Name  string    `json:"name"`
	Room  string    `json:"room"`  // the room the PIN opens
	Since time.Time `json:"since"` // when the prompt started
}
