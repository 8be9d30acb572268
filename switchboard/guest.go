package switchboard

import (
	"context"

	"github.com/voxgate/voxgate/dialplan"
)

// JoinRoom puts c straight into the named room, as origin (a browser guest
// admitted by a signed guest link: "guest"), without the dialplan or a PIN;
// the room's participants see c.Caller() as its name. It returns when the
// call is over for the switchboard.
//
// The room gets no options of a dialplan rule: a room made by this call has
// the defaults, and a guest is never held for a moderator.
func (s *Switchboard) JoinRoom(ctx context.Context, c Leg, room, origin string) {
	s.owned(ctx, c, func(ctx context.Context) { s.joinDirectly(ctx, c, room, origin) })
}

// joinDirectly answers c and puts it in room.
func (s *Switchboard) joinDirectly(ctx context.Context, c Leg, room, origin string) {
	ra := dialplan.RoomAction{Name: room}
	log := s.log.With("call_id", c.ID(), "origin", origin, "action", dialplan.Room, "room", room)
	log.Debug("joins a room directly")
	defer s.track(c, origin, dialplan.Action{Kind: dialplan.Room, Room: ra})()
	if err := s.answer(ctx, c); err != nil { // counts its set-up and, at the end, its duration
		return
	}
	s.joinRoom(ctx, c, ra, false, log)
}
