package webclient

import (
	"errors"
	"net/http"

	"github.com/voxgate/voxgate/api"
)

// Transferer is implemented by a Control that moves live legs: POST
// /api/v1/calls/{id}/transfer. Without it the route answers 501.
type Transferer interface {
	// Transfer sends leg id to r.To: its partner in a two-party call is
	// hung up once the target answers; a leg in a room leaves it. It
	// returns once the transfer has started. Errors: api.ErrNotFound (no
	// such leg), api.ErrForbidden (the dialplan refuses the target),
	// api.ErrConflict (voxgate is stopping), anything else a bad request.
	Transfer(id string, r api.TransferRequest) error
}

// TransferRequest is the body of POST /api/v1/calls/{id}/transfer.
type TransferRequest = api.TransferRequest

func init() { routeSets = append(routeSets, (*Server).transferRoutes) }

// transferRoutes are the call transfer's endpoint (admin scope, like the
// other calls that change a call).
func (s *Server) transferRoutes() []Route {
	return []Route{
		{"POST", APIPrefix + "/calls/{id}/transfer", ScopeAdmin, "", s.handleTransfer},
	}
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	tr, ok := s.control.(Transferer)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this server does not transfer calls")
		return
	}
	var req TransferRequest
	if !readBody(w, r, &req) {
		return
	}
	err := tr.Transfer(r.PathValue("id"), req)
	s.audit(r, "call transferred", err, "call_id", r.PathValue("id"), "to", req.To, "context", req.Context)
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, api.Transferring{Status: "transferring"})
	case errors.Is(err, api.ErrForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	default:
		writeResult(w, nil, err)
	}
}
