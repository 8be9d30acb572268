package api

import "time"

// CallRecord is one call as the history keeps it: written when the call is
// routed, updated when it is answered and when it ends.
type CallRecord struct {
	ID string `json:"id"` // the record's own id (unique across restarts)
	// CallID is the caller's leg id: the SIP Call-ID, or the page's call id.
	CallID  string `json:"call_id"`
	Origin  string `json:"origin"` // user, web, guest or trunk:<name>
	Caller  string `json:"caller"`
	Callee  string `json:"callee"` // the number or user dialled
	Context string `json:"context"`
	// Rule is the dialplan rule that matched, as file:line.
	Rule   string `json:"rule"`
	Action string `json:"action"`         // room, pin, dial, echo, playback, reject
	Room   string `json:"room,omitempty"` // for room and pin actions
	User   string `json:"user,omitempty"` // the user a dial action rang
	Trunk  string `json:"trunk,omitempty"`
	// Status is "active" until the call ends, then "ended".
	Status   string       `json:"status"`
	Started  time.Time    `json:"started"`
	Answered *time.Time   `json:"answered,omitempty"`
	Ended    *time.Time   `json:"ended,omitempty"`
	Cause    *HangupCause `json:"cause,omitempty"`
	// Legs are the call's media legs (the caller's, and the callee's for a
	// dial) with their quality; empty until the call ends.
	Legs []CallLeg `json:"legs,omitempty"`
}

// Call statuses.
const (
	CallActive = "active"
	CallEnded  = "ended"
)

// HangupCause says why a call ended.
type HangupCause struct {
	// By is who ended it: caller, callee, api (hung up or kicked through the
	// REST API), dialplan (a reject rule), system (no answer, an error,
	// voxgate stopping) or crash (the call was in progress when voxgate
	// stopped without ending it; marked at the next start).
	By string `json:"by"`
	// Status is the final SIP status when the call was refused (0 otherwise).
	Status int    `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// CallLeg is one media leg of a call with its quality.
type CallLeg struct {
	ID      string     `json:"id"`
	Role    string     `json:"role"` // caller or callee
	Name    string     `json:"name"`
	Codec   string     `json:"codec"`
	Rate    int        `json:"rate"`
	Joined  time.Time  `json:"joined"`
	Left    *time.Time `json:"left,omitempty"`
	Quality LegQuality `json:"quality"`
}

// LegQuality is what the leg's RTP and RTCP said, over the whole call.
type LegQuality struct {
	PacketsReceived uint64  `json:"packets_received"`
	PacketsExpected uint64  `json:"packets_expected"`
	Lost            int64   `json:"packets_lost"`
	LossPercent     float64 `json:"loss_percent"` // of the packets expected, as received by voxgate
	JitterMS        float64 `json:"jitter_ms"`    // RFC 3550 interarrival jitter at the end
	// RemoteLossPercent is the far end's last RTCP report of our stream.
	RemoteLossPercent float64 `json:"remote_loss_percent"`
	// RTTMS is the round-trip time when the leg measures it (null: unknown).
	RTTMS *float64 `json:"rtt_ms,omitempty"`
	// MOS is an estimate (1 to 4.5) from the ITU-T G.107 E-model over the
	// codec, the loss and an estimated delay: a guide, not a measurement.
	// 0 when the leg received no media to judge.
	MOS float64 `json:"mos"`
}

// CallQuery filters the call history. Zero fields do not filter.
type CallQuery struct {
	Since, Until time.Time // started at or after Since, before Until
	Number       string    // caller or callee
	Room         string
	User         string // caller, callee or the user a dial rang
	Status       string // active or ended
	Limit        int
	// After is the cursor: the (Started, ID) of the last record of the
	// previous page; records strictly older come next.
	AfterStarted time.Time
	AfterID      string
}

// RoomEvent is one stay of a participant in a room.
type RoomEvent struct {
	Room   string     `json:"room"`
	Leg    string     `json:"leg"`
	CallID string     `json:"call_id,omitempty"`
	Name   string     `json:"name"`
	Joined time.Time  `json:"joined"`
	Left   *time.Time `json:"left,omitempty"`
}

// Recording is one entry of the recordings' index.
type Recording struct {
	ID    string     `json:"id"`
	Room  string     `json:"room"`
	File  string     `json:"file"` // the file's name (in rooms.record_dir)
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end,omitempty"`
	Size  int64      `json:"size"` // bytes, when it ended
	// Path is where the file is on the server; not shown by the API.
	Path string `json:"-"`
}
