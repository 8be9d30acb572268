package api

import "errors"

// ErrForbidden: the dialplan does not let the change be made, e.g. a
// transfer to a number the leg's context may not reach (403).
var ErrForbidden = errors.New("forbidden")

// TransferRequest moves a live leg (POST /api/v1/calls/{id}/transfer): To
// is a number, user or room, routed through Context (default: the context
// of the leg's own origin, so the toll-fraud guard applies).
type TransferRequest struct {
	To      string `json:"to"`
	Context string `json:"context,omitempty"`
}

// Transferring is the answer to a transfer that has started; its outcome
// is in the log and the call records.
type Transferring struct {
	Status string `json:"status"` // "transferring"
}
