package main

import (
	"context"
	"sync"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
	"github.com/voxgate/voxgate/switchboard"
)

// hookedRecords is the switchboard's call history with webhooks beside it:
// each write goes to the store, and the matching event to the webhooks
// (their outbox is in the same store). The switchboard calls it from one
// goroutine, in order.
type hookedRecords struct {
	switchboard.CallRecords
	hooks *events.Webhooks

	mu    sync.Mutex
	calls map[string]events.CallData // by record id, until the call ends
	start map[string]time.Time
}

var (
	_ switchboard.CallRecords = (*hookedRecords)(nil)
	_ switchboard.BatchWriter = (*hookedRecords)(nil)
	_ switchboard.BatchWriter = (*store.SQLite)(nil)
)

func newHookedRecords(next switchboard.CallRecords, hooks *events.Webhooks) *hookedRecords {
	return &hookedRecords{CallRecords: next, hooks: hooks, calls: map[string]events.CallData{},
		start: map[string]time.Time{}}
}

func (h *hookedRecords) CallStarted(ctx context.Context, r api.CallRecord) error {
	err := h.CallRecords.CallStarted(ctx, r)
	d := events.CallData{RecordID: r.ID, CallID: r.CallID, Origin: r.Origin, From: r.Caller, To: r.Callee,
		Action: r.Action, Room: r.Room, Rule: r.Rule}
	h.mu.Lock()
	h.calls[r.ID], h.start[r.ID] = d, r.Started
	h.mu.Unlock()
	h.hooks.Publish(events.Event{Type: events.CallStarted, Time: r.Started, Data: d})
	return err
}

// WriteBatch passes a batch of the journal's writes on to the store (the
// ops call h's methods, which publish their events as they run); records
// that cannot batch run them one at a time.
func (h *hookedRecords) WriteBatch(ctx context.Context, ops []func(context.Context) error) ([]error, error) {
	if b, ok := h.CallRecords.(switchboard.BatchWriter); ok {
		return b.WriteBatch(ctx, ops)
	}
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = op(ctx)
	}
	return errs, nil
}

// CallTrunk passes the trunk that carried a call on to the store.
func (h *hookedRecords) CallTrunk(ctx context.Context, id, trunk string) error {
	if n, ok := h.CallRecords.(switchboard.TrunkNoter); ok {
		return n.CallTrunk(ctx, id, trunk)
	}
	return nil
}

func (h *hookedRecords) CallAnswered(ctx context.Context, id string, at time.Time) error {
	err := h.CallRecords.CallAnswered(ctx, id, at)
	h.mu.Lock()
	d, ok := h.calls[id]
	h.mu.Unlock()
	if ok {
		h.hooks.Publish(events.Event{Type: events.CallAnswered, Time: at, Data: d})
	}
	return err
}

func (h *hookedRecords) CallEnded(ctx context.Context, id string, at time.Time, cause api.HangupCause, legs []api.CallLeg) error {
	err := h.CallRecords.CallEnded(ctx, id, at, cause, legs)
	h.mu.Lock()
	d, ok := h.calls[id]
	started := h.start[id]
	delete(h.calls, id)
	delete(h.start, id)
	h.mu.Unlock()
	if ok {
		d.Cause = &cause
		d.Duration = at.Sub(started).Seconds()
		for _, l := range legs {
			if m := l.Quality.MOS; m > 0 && (d.MOS == 0 || m < d.MOS) {
				d.MOS = m
			}
		}
		h.hooks.Publish(events.Event{Type: events.CallEnded, Time: at, Data: d})
	}
	return err
}

// roomEvent publishes the room.* events from the switchboard's room events.
func roomEvent(hooks *events.Webhooks) func(bridge.Event, string) {
	return func(e bridge.Event, name string) {
		d := events.RoomData{Room: e.Room, LegID: e.Leg, Name: name}
		typ := events.RoomJoined
		switch e.Type {
		case "left", "kicked":
			typ = events.RoomLeft
		case "talking", "stopped-talking":
			typ = events.RoomTalking
			talking := e.Type == "talking"
			d.Talking = &talking
		}
		hooks.Publish(events.Event{Type: typ, Time: e.At, Data: d})
	}
}

// transferEvent publishes how a transfer ended as call.transferred.
func transferEvent(hooks *events.Webhooks) func(switchboard.TransferOutcome) {
	return func(o switchboard.TransferOutcome) {
		hooks.Publish(events.Event{Type: events.CallTransfer, Time: o.At, Data: events.TransferData{
			CallID: o.CallID, To: o.To, Attended: o.Attended, By: o.By, Status: o.Status, Reason: o.Reason}})
	}
}

// streamEvent publishes a media stream to a bot connecting or ending.
func streamEvent(hooks *events.Webhooks) func(switchboard.StreamEvent) {
	return func(e switchboard.StreamEvent) {
		typ := events.StreamStart
		if e.Ended {
			typ = events.StreamEnd
		}
		d := events.StreamData{StreamID: e.Info.ID, Kind: e.Info.Kind, CallID: e.Info.Call, Room: e.Info.Room, URL: e.Info.URL,
			Framing: e.Info.Framing, Origin: e.Info.Origin, TransferTo: e.TransferTo}
		if e.Err != nil {
			d.Error = e.Err.Error()
		}
		hooks.Publish(events.Event{Type: typ, Time: e.At, Data: d})
	}
}

// trunkEvent publishes a trunk's registration change.
func trunkEvent(hooks *events.Webhooks) func(sip.TrunkState) {
	return func(st sip.TrunkState) {
		hooks.Publish(events.Event{Type: events.TrunkState, Data: events.TrunkData{Trunk: st.Name, Registered: st.Registered, Error: st.LastError}})
	}
}

// qualifyEvent turns a trunk's qualify change (down, up again) into a
// trunk.qualify event.
func qualifyEvent(hooks *events.Webhooks) func(string, sip.Health) {
	return func(trunk string, h sip.Health) {
		d := events.TrunkQualifyData{Trunk: trunk, Reachable: h.Reachable, Error: h.LastError}
		if h.Reachable {
			d.RTTMS = rttMS(h)
		}
		hooks.Publish(events.Event{Type: events.TrunkQualify, Time: h.Since, Data: d})
	}
}

// hookedLocations is the registrar's location store with a registration
// event when a contact appears (not at each refresh) or is removed.
type hookedLocations struct {
	sip.LocationStore
	hooks *events.Webhooks

	mu    sync.Mutex
	known map[[2]string]bool // aor and contact
}

var _ sip.LocationStore = (*hookedLocations)(nil)

func newHookedLocations(next sip.LocationStore, hooks *events.Webhooks) *hookedLocations {
	return &hookedLocations{LocationStore: next, hooks: hooks, known: map[[2]string]bool{}}
}

func (h *hookedLocations) LoadBindings(ctx context.Context, now time.Time) ([]sip.Binding, error) {
	bs, err := h.LocationStore.LoadBindings(ctx, now)
	h.mu.Lock()
	for _, b := range bs {
		h.known[[2]string{b.AOR, b.Contact}] = true
	}
	h.mu.Unlock()
	return bs, err
}

func (h *hookedLocations) SaveBinding(ctx context.Context, b sip.Binding) error {
	err := h.LocationStore.SaveBinding(ctx, b)
	key := [2]string{b.AOR, b.Contact}
	h.mu.Lock()
	isNew := !h.known[key]
	h.known[key] = true
	h.mu.Unlock()
	if isNew {
		h.hooks.Publish(events.Event{Type: events.Registration, Data: events.RegistrationData{User: b.AOR, Contact: b.Contact,
			State: "registered", Expires: b.Expires.UTC()}})
	}
	return err
}

func (h *hookedLocations) DeleteBinding(ctx context.Context, aor, contact string) error {
	err := h.LocationStore.DeleteBinding(ctx, aor, contact)
	var gone []string
	h.mu.Lock()
	for k := range h.known {
		if k[0] == aor && (contact == "" || k[1] == contact) {
			gone = append(gone, k[1])
			delete(h.known, k)
		}
	}
	h.mu.Unlock()
	for _, c := range gone {
		h.hooks.Publish(events.Event{Type: events.Registration, Data: events.RegistrationData{User: aor, Contact: c, State: "unregistered"}})
	}
	return err
}
