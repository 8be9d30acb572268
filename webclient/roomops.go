package webclient

import (
	"net/http"

	"github.com/voxgate/voxgate/api"
)

// RoomOps are the room operations beyond Control's: letting in a caller
// who waits for a moderator, and moving a participant to another room. A
// Control that has them serves their routes (cmd/voxgate's does); else
// they answer 501.
type RoomOps interface {
	// Admit lets leg in now: a caller keying room's PIN joins as if it had
	// keyed it; one waiting for a moderator hears and is heard (a leg that
	// does neither is left as it is).
	Admit(room, leg string) (LegInfo, error)
	// PINCallers lists the callers keying a room's PIN now.
	PINCallers() []api.PINCaller
	// Move takes leg out of room into another room (made if need be); its
	// call goes on.
	Move(room, leg, to string) error
}

// MoveRequest is the body of a move: the room the leg goes to.
type MoveRequest struct {
	Room string `json:"room"`
}

func init() { routeSets = append(routeSets, (*Server).roomOpsRoutes) }

func (s *Server) roomOpsRoutes() []Route {
	ops := func(w http.ResponseWriter) (RoomOps, bool) {
		o, ok := s.control.(RoomOps)
		if !ok {
			writeError(w, http.StatusNotImplemented, "this server cannot admit or move participants")
		}
		return o, ok
	}
	return []Route{
		{"GET", APIPrefix + "/pin-callers", ScopeRead, "", func(w http.ResponseWriter, _ *http.Request) {
			if o, ok := ops(w); ok {
				writeJSON(w, http.StatusOK, nonNil(o.PINCallers()))
			}
		}},
		{"POST", APIPrefix + "/rooms/{room}/legs/{leg}/admit", ScopeAdmin, "", func(w http.ResponseWriter, r *http.Request) {
			o, ok := ops(w)
			if !ok {
				return
			}
			leg, err := o.Admit(r.PathValue("room"), r.PathValue("leg"))
			s.audit(r, "leg admitted", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"))
			writeResult(w, leg, err)
		}},
		{"POST", APIPrefix + "/rooms/{room}/legs/{leg}/move", ScopeAdmin, "", func(w http.ResponseWriter, r *http.Request) {
			var m MoveRequest
			if !readBody(w, r, &m) {
				return
			}
			o, ok := ops(w)
			if !ok {
				return
			}
			err := o.Move(r.PathValue("room"), r.PathValue("leg"), m.Room)
			s.audit(r, "leg moved", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"), "to", m.Room)
			writeResult(w, struct{}{}, err)
		}},
	}
}
