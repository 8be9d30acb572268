package switchboard

import (
	"errors"
	"fmt"
	"time"

	"github.com/voxgate/voxgate/api"
)

// commandWait bounds how long the entering node waits for the host's
// answer to a command. The host answers within a Redis round trip (a few
// milliseconds); 3 s is far beyond that and still short enough for a page
// whose moderator clicked and waits.
const commandWait = 3 * time.Second

// Errors of commands to a room hosted elsewhere.
var (
	// ErrNoAnswer: the host did not answer a command in time (it may or
	// may not have done it).
	ErrNoAnswer = errors.New("the node hosting the room did not answer the command")
)

// The kinds of a host's refusal of a command (RoomViewEvent.Kind), which
// the entering node turns back into the errors the host returned, so that
// its REST API answers the same status as the host's would.
const (
	RefusedNotFound     = "not_found"     // api.ErrNotFound: no such leg (it left) or room
	RefusedNotModerator = "not_moderator" // ErrNotModerator: the cascade leg does not moderate the room
	RefusedConflict     = "conflict"      // api.ErrConflict: e.g. recording a room that records already
)

// commandResult is the host's answer to cmd, done (err nil) or refused: a
// "result" view event carrying the command's id.
func commandResult(room, self string, cmd RoomCommand, err error) RoomViewEvent {
	e := RoomViewEvent{Type: "result", Room: room, Self: self, Command: cmd.ID}
	if err != nil {
		e.Error = err.Error()
		switch {
		case errors.Is(err, ErrNotModerator):
			e.Kind = RefusedNotModerator
		case errors.Is(err, api.ErrNotFound):
			e.Kind = RefusedNotFound
		case errors.Is(err, api.ErrConflict):
			e.Kind = RefusedConflict
		}
	}
	return e
}

// resultError is the error of a host's "result" event (nil: done).
func resultError(e RoomViewEvent) error {
	if e.Error == "" {
		return nil
	}
	return &hostError{msg: e.Error, kind: e.Kind}
}

// hostError is a host's refusal as the entering node returns it: the
// host's message, and its kind for errors.Is.
type hostError struct{ msg, kind string }

func (e *hostError) Error() string { return e.msg }

func (e *hostError) Unwrap() []error {
	switch e.kind {
	case RefusedNotFound:
		return []error{api.ErrNotFound}
	case RefusedNotModerator:
		return []error{ErrNotModerator, api.ErrForbidden}
	case RefusedConflict:
		return []error{api.ErrConflict}
	}
	return nil
}

// command sends cmd to the host under a new id and waits, at most v.wait
// (commandWait by default), for the host's answer to that id: nil when
// the host did it, the host's refusal, or ErrNoAnswer.
func (v *remoteView) command(cmd RoomCommand) error {
	cmd.ID = newID("cmd_")
	answer := make(chan RoomViewEvent, 1)
	v.mu.Lock()
	if v.pending == nil {
		v.pending = map[string]chan RoomViewEvent{}
	}
	v.pending[cmd.ID] = answer
	wait := v.wait
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.pending, cmd.ID)
		v.mu.Unlock()
	}()
	if err := v.send(cmd); err != nil {
		return err
	}
	if wait <= 0 {
		wait = commandWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case e := <-answer:
		return resultError(e)
	case <-t.C:
		return fmt.Errorf("%w within %s", ErrNoAnswer, wait)
	}
}

// answered hands a host's "result" event to the command waiting for it
// (none: it gave up waiting, or the event is another view's).
func (v *remoteView) answered(e RoomViewEvent) {
	v.mu.Lock()
	answer := v.pending[e.Command]
	delete(v.pending, e.Command)
	v.mu.Unlock()
	if answer != nil {
		answer <- e // buffered for one; deleted above, so sent once
	}
}
