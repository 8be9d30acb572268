package webclient

import (
	"net/http"

	"github.com/voxgate/voxgate/api"
)

func init() { routeSets = append(routeSets, (*Server).pageRoutes) }

// myCallsLimit is how many calls the page's history shows.
const myCallsLimit = 20

// pageRoutes are what the page itself reads with its session cookie (no
// token): the signed-in user's own recent calls, for its call history.
func (s *Server) pageRoutes() []Route {
	return []Route{
		{"GET", APIPrefix + "/session/calls", ScopePublic, "", s.handleMyCalls},
	}
}

// handleMyCalls is GET /api/v1/session/calls: the last calls the session's
// user placed or took, newest first. A guest has no history.
func (s *Server) handleMyCalls(w http.ResponseWriter, r *http.Request) {
	id, err := s.identity(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	if id.guest() {
		writeJSON(w, http.StatusOK, CallPage{Calls: []api.CallRecord{}})
		return
	}
	if s.history == nil {
		writeError(w, http.StatusServiceUnavailable, "no call history is kept: set data_dir in the config")
		return
	}
	calls, _, err := s.history.Calls(r.Context(), api.CallQuery{User: id.user, Limit: myCallsLimit})
	if err != nil {
		s.writeHistory(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, CallPage{Calls: nonNil(calls)})
}
