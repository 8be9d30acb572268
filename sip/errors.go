package sip

import "errors"

// Errors of calls.
var (
	ErrCallEnded    = errors.New("call ended")
	ErrNoDTMF       = errors.New("peer did not negotiate telephone-event")
	ErrBadDigit     = errors.New("not a DTMF digit")
	ErrUnknownTrunk = errors.New("unknown trunk")
	// ErrTooManyContacts: a REGISTER would leave a user more contacts than
	// sip.max_contacts.
	ErrTooManyContacts = errors.New("too many contacts")
	errPayloadTooBig   = errors.New("payload larger than a packet")
)

// Rejection is a final SIP status a Handler answers an INVITE with.
type Rejection struct {
	Status int
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

// SIPStatus is the final status and reason a call was refused with.
func (r *Rejection) SIPStatus() (int, string) { return r.Status, r.Reason }

// Common rejections.
var (
	RejectNotFound    = &Rejection{404, "Not Found"}
	RejectUnavailable = &Rejection{480, "Temporarily Unavailable"}
	RejectForbidden   = &Rejection{403, "Forbidden"}
)
