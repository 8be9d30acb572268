package webclient

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/voxgate/voxgate/api"
)

// Errors a Control returns, translated to HTTP codes by the REST API.
var (
	ErrNotFound = api.ErrNotFound
	ErrConflict = api.ErrConflict
)

// Control is what the REST API reads and changes: rooms and their legs,
// registrations, trunks and calls. cmd/voxgate implements it.
type Control interface {
	Rooms() []RoomInfo
	Room(name string) (RoomInfo, error)
	ChangeRoom(name string, ch RoomChange) (RoomInfo, error)
	ChangeLeg(room, leg string, ch LegChange) (LegInfo, error)
	Kick(room, leg string) error
	Registrations() []Registration
	Trunks() []TrunkInfo
	Calls() []CallInfo
	Hangup(id string) error
	// Dial calls a user (all their pages and phones) or a number through a
	// trunk and puts whoever answers into the room. It returns once the
	// call is placed; the answer comes later.
	Dial(room string, d DialRequest) error
	// Play plays a prompt to the whole room or to one leg of it.
	Play(room string, p PlayRequest) error
}

// The REST API's resources (package api holds them, so that the
// switchboard fills them without importing this package).
type (
	RoomInfo     = api.RoomInfo
	LegInfo      = api.LegInfo
	RoomChange   = api.RoomChange
	LegChange    = api.LegChange
	DialRequest  = api.DialRequest
	PlayRequest  = api.PlayRequest
	Registration = api.Registration
	TrunkInfo    = api.TrunkInfo
	CallInfo     = api.CallInfo
)

// WithControl serves the REST API and /metrics over c. They answer only
// requests with "Authorization: Bearer <Config.APIToken>".
func WithControl(c Control) Option { return func(s *Server) { s.control = c } }

// mountAPI adds the REST API and /metrics to mux.
func (s *Server) mountAPI(mux *http.ServeMux) {
	h := func(f func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !s.apiAllowed(w, r) {
				return
			}
			f(w, r)
		}
	}
	mux.HandleFunc("GET /metrics", h(s.handleMetrics))
	mux.HandleFunc("GET /api/rooms", h(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.control.Rooms()))
	}))
	mux.HandleFunc("GET /api/rooms/{room}", h(func(w http.ResponseWriter, r *http.Request) {
		room, err := s.control.Room(r.PathValue("room"))
		writeResult(w, room, err)
	}))
	mux.HandleFunc("PATCH /api/rooms/{room}", h(func(w http.ResponseWriter, r *http.Request) {
		var ch RoomChange
		if !readChange(w, r, &ch) {
			return
		}
		room, err := s.control.ChangeRoom(r.PathValue("room"), ch)
		s.audit(r, "room changed", err, "room", r.PathValue("room"))
		writeResult(w, room, err)
	}))
	mux.HandleFunc("PATCH /api/rooms/{room}/legs/{leg}", h(func(w http.ResponseWriter, r *http.Request) {
		var ch LegChange
		if !readChange(w, r, &ch) {
			return
		}
		leg, err := s.control.ChangeLeg(r.PathValue("room"), r.PathValue("leg"), ch)
		s.audit(r, "leg changed", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"))
		writeResult(w, leg, err)
	}))
	mux.HandleFunc("DELETE /api/rooms/{room}/legs/{leg}", h(func(w http.ResponseWriter, r *http.Request) {
		err := s.control.Kick(r.PathValue("room"), r.PathValue("leg"))
		s.audit(r, "leg kicked", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"))
		writeResult(w, struct{}{}, err)
	}))
	mux.HandleFunc("POST /api/rooms/{room}/dial", h(func(w http.ResponseWriter, r *http.Request) {
		var d DialRequest
		if !readChange(w, r, &d) {
			return
		}
		err := s.control.Dial(r.PathValue("room"), d)
		s.audit(r, "dial into room", err, "room", r.PathValue("room"), "user", d.User, "trunk", d.Trunk, "number", d.Number)
		if err != nil {
			writeResult(w, nil, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "calling"})
	}))
	mux.HandleFunc("POST /api/rooms/{room}/play", h(func(w http.ResponseWriter, r *http.Request) {
		var p PlayRequest
		if !readChange(w, r, &p) {
			return
		}
		err := s.control.Play(r.PathValue("room"), p)
		s.audit(r, "prompt played", err, "room", r.PathValue("room"), "file", p.File, "leg", p.Leg)
		writeResult(w, struct{}{}, err)
	}))
	mux.HandleFunc("GET /api/registrations", h(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.control.Registrations()))
	}))
	mux.HandleFunc("GET /api/trunks", h(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.control.Trunks()))
	}))
	mux.HandleFunc("GET /api/calls", h(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.control.Calls()))
	}))
	mux.HandleFunc("DELETE /api/calls/{id}", h(func(w http.ResponseWriter, r *http.Request) {
		err := s.control.Hangup(r.PathValue("id"))
		s.audit(r, "call hung up", err, "call_id", r.PathValue("id"))
		writeResult(w, struct{}{}, err)
	}))
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// apiAllowed checks the bearer token; it answers the request when not.
func (s *Server) apiAllowed(w http.ResponseWriter, r *http.Request) bool {
	if s.control == nil || s.cfg.APIToken == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the REST API is off: set web.api_token in the config"})
		return false
	}
	if s.refuseBanned(w, r) {
		return false
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIToken)) != 1 {
		s.log.Info("REST API request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "had_token", auth != "")
		if auth != "" { // a wrong token is a guess; no token at all is not
			s.failed(r, "", "api")
			if s.refuseBanned(w, r) {
				return false
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="voxgate"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "send Authorization: Bearer <web.api_token>"})
		return false
	}
	return true
}

// audit logs every change made through the API.
func (s *Server) audit(r *http.Request, msg string, err error, args ...any) {
	args = append(args, "remote", r.RemoteAddr)
	if err != nil {
		args = append(args, "error", err)
	}
	s.log.Info("REST API: "+msg, args...)
}

// readChange decodes a PATCH body strictly: an unknown field or a wrong type
// is a 400 that names it.
func readChange(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("field %q: want a %s, not a JSON %s", te.Field, te.Type, te.Value)
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad change: " + strings.TrimPrefix(msg, "json: ")})
		return false
	}
	return true
}

// writeResult answers v, or the error with its HTTP code.
func writeResult(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}
