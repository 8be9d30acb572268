package switchboard

import (
	"context"
	"log/slog"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Cluster tells where a room is hosted when several nodes share the rooms
// (README: "More than one machine"). A room lives on one node; a leg for
// it that reaches another node is bridged to the host over a cascade leg.
type Cluster interface {
	// RoomElsewhere claims room.Name for this node when no live node hosts
	// it and returns nil (host it here), or returns a way to call the room
	// on the live node that hosts it (a cascade leg carrying room).
	RoomElsewhere(ctx context.Context, room CascadeRoom) Device
}

// CascadeRoom is what a cascade leg tells the room's node: the room, and
// how the participant was admitted where it entered (its PIN checked
// there): as a moderator, and the room's moderator rules.
type CascadeRoom struct {
	Name                               string
	Moderator                          bool
	WaitForModerator, EndWithModerator bool
	// View names the entering node's view of the room for a page (RoomViews;
	// "" : none): the host tells it what the page would see.
	View string
}

// hereOnly marks a context whose leg must join the room on this node: a
// cascade leg from another node never cascades again (no loops).
type hereOnly struct{}

// HostRoom puts a cascade leg (another node's participant, checked there:
// PIN and rules) straight into room on this node, as the moderator or
// plain participant it entered as there, never cascading it further,
// whatever the cluster says.
func (s *Switchboard) HostRoom(ctx context.Context, c Leg, room CascadeRoom, origin string) {
	s.owned(ctx, c, func(ctx context.Context) {
		ctx = context.WithValue(ctx, hereOnly{}, true)
		ra := dialplan.RoomAction{Name: room.Name, WaitForModerator: room.WaitForModerator, EndWithModerator: room.EndWithModerator}
		log := s.log.With("call_id", c.ID(), "origin", origin, "action", dialplan.Room, "room", room.Name)
		log.Debug("joins a room from another node", "moderator", room.Moderator, "view", room.View != "")
		w, stop := s.serveView(ctx, c, room.Name, room.View)
		defer stop()
		if w != nil {
			ctx = context.WithValue(ctx, viewerKey{}, w)
		}
		defer s.track(c, origin, dialplan.Action{Kind: dialplan.Room, Room: ra})()
		if err := s.answer(ctx, c); err != nil {
			return
		}
		s.joinRoom(ctx, c, ra, room.Moderator, log)
	})
}

// HereDialer is a Dialer that tells apart the devices of a user it reaches
// on this node alone (a browser's SIP over WebSocket ends on one node). A
// call another node forwards here (RingHere) rings those only: that node
// rang the others itself. A Dialer that is not a HereDialer reaches only
// this node's devices (a user's open pages) and is asked for them all.
type HereDialer interface {
	DevicesHere(user string) []Device
}

// forwardTimeout bounds the ringing of a forwarded call: the node that
// forwarded it applies the dialplan's timeout and cancels before.
const forwardTimeout = 5 * time.Minute

// RingHere rings user's devices on this node for a call another node of
// the cluster forwarded here (it holds the user's registration over
// WebSocket) and bridges the caller to whoever answers. It never forwards
// the call again.
func (s *Switchboard) RingHere(ctx context.Context, c Leg, user, origin string) {
	s.owned(ctx, c, func(ctx context.Context) {
		ctx = context.WithValue(ctx, hereOnly{}, true)
		d := dialplan.DialAction{User: user, Timeout: int(forwardTimeout / time.Second)}
		log := s.log.With("call_id", c.ID(), "origin", origin, "action", dialplan.Dial, "user", user)
		log.Debug("rings a user for another node")
		defer s.track(c, origin, dialplan.Action{Kind: dialplan.Dial, Dial: d})()
		s.dial(ctx, c, d, log)
	})
}

// cascade bridges c to room on the node hosting it, when that is another
// node, until either side ends. It reports false when c is to join the
// room here (hosted here or nowhere, or the host did not take the leg).
func (s *Switchboard) cascade(ctx context.Context, c Leg, ra dialplan.RoomAction, moderator bool, log *slog.Logger) bool {
	if s.cluster == nil || ctx.Value(hereOnly{}) != nil {
		return false
	}
	token := s.viewToken(c)
	dev := s.cluster.RoomElsewhere(ctx, CascadeRoom{Name: ra.Name, Moderator: moderator, WaitForModerator: ra.WaitForModerator, EndWithModerator: ra.EndWithModerator, View: token})
	if dev == nil {
		return false
	}
	defer s.watchRemote(ctx, c, ra.Name, token)() // before the host can tell it anything
	far, err := dev(ctx, c.Caller())
	if err != nil {
		log.Warn("cluster: the node hosting the room did not take the call: the room starts here too (its participants do not hear those there)",
			"room", ra.Name, "error", err)
		return false
	}
	relayDTMF(c, far) // a PIN or moderator key reaches the host's room
	pair, err := bridge.Connect(c, far, bridge.RoomConfig{Logger: log, Meter: s.meter})
	if err != nil {
		log.Error("cannot bridge the call to the room's node", "error", err)
		hangup(far)
		hangup(c)
		return true
	}
	s.connected(c.ID(), pair)
	log.Info("room hosted on another node: call bridged to it", "room", ra.Name, "cascade", far.ID())
	select {
	case <-c.Done():
	case <-far.Done():
	case <-ctx.Done():
		s.endedByContext(ctx, c)
	}
	pair.Close()
	c.OnDTMF(nil)
	far.OnDTMF(nil)
	hangup(far)
	hangup(c)
	return true
}
