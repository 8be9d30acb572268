package webclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// ClusterRoomer is a Control that also knows the rooms the other nodes of
// a cluster host: GET /api/v1/rooms lists them after this node's own
// (Remote, with their host's Node and participant count, no legs).
type ClusterRoomer interface {
	ClusterRooms() []RoomInfo
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
// requests with a bearer token of the scope a route needs (Config.Tokens,
// or the legacy Config.APIToken).
func WithControl(c Control) Option { return func(s *Server) { s.control = c } }

// APIPrefix is where the REST API lives; the unversioned /api/... paths are
// deprecated aliases of some of its routes.
const APIPrefix = "/api/v1"

// Route is one endpoint of the REST API (or /metrics): registered once
// with the scope it needs, and described in openapi.json (a test checks
// that the two agree).
type Route struct {
	Method string // GET, POST, PATCH, DELETE
	// Path is a net/http pattern path: "/api/v1/rooms/{room}".
	Path string
	// Scope is the token scope the route needs; ScopePublic: none.
	Scope Scope
	// Alias is the deprecated path that serves the same handler (answers
	// carry Deprecation and a Link to Path); "" for none.
	Alias   string
	Handler http.HandlerFunc
}

// routeSets are the REST API's routes, a set per file: a file that adds
// routes appends its set in an init func, so that every route goes through
// the same table (scopes, aliases, the OpenAPI check):
//
//	func init() { routeSets = append(routeSets, (*Server).historyRoutes) }
var routeSets = []func(*Server) []Route{(*Server).coreRoutes}

// Routes lists every route of the REST API and /metrics.
func (s *Server) Routes() []Route {
	var out []Route
	for _, set := range routeSets {
		out = append(out, set(s)...)
	}
	return out
}

// coreRoutes are the page's sign-in, the live state of rooms, calls,
// registrations and trunks, /metrics and the API's own description.
func (s *Server) coreRoutes() []Route {
	v1 := func(p string) string { return APIPrefix + p }
	old := func(p string) string { return "/api" + p }
	return []Route{
		{"POST", v1("/login"), ScopePublic, old("/login"), s.handleLogin},
		{"POST", v1("/logout"), ScopePublic, old("/logout"), s.handleLogout},
		{"GET", v1("/session"), ScopePublic, old("/session"), s.handleSession},
		{"GET", v1("/openapi.json"), ScopePublic, "", handleOpenAPI},
		{"GET", "/metrics", ScopeMetrics, "", s.handleMetrics},
		{"GET", v1("/rooms"), ScopeRead, old("/rooms"), func(w http.ResponseWriter, _ *http.Request) {
			rooms := s.control.Rooms()
			if cr, ok := s.control.(ClusterRoomer); ok { // and those other nodes host
				rooms = append(rooms, cr.ClusterRooms()...)
			}
			writeJSON(w, http.StatusOK, nonNil(rooms))
		}},
		{"GET", v1("/rooms/{room}"), ScopeRead, old("/rooms/{room}"), func(w http.ResponseWriter, r *http.Request) {
			room, err := s.control.Room(r.PathValue("room"))
			writeResult(w, room, err)
		}},
		{"PATCH", v1("/rooms/{room}"), ScopeAdmin, old("/rooms/{room}"), func(w http.ResponseWriter, r *http.Request) {
			var ch RoomChange
			if !readBody(w, r, &ch) {
				return
			}
			room, err := s.control.ChangeRoom(r.PathValue("room"), ch)
			s.audit(r, "room changed", err, "room", r.PathValue("room"))
			writeResult(w, room, err)
		}},
		{"PATCH", v1("/rooms/{room}/legs/{leg}"), ScopeAdmin, old("/rooms/{room}/legs/{leg}"), func(w http.ResponseWriter, r *http.Request) {
			var ch LegChange
			if !readBody(w, r, &ch) {
				return
			}
			leg, err := s.control.ChangeLeg(r.PathValue("room"), r.PathValue("leg"), ch)
			s.audit(r, "leg changed", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"))
			writeResult(w, leg, err)
		}},
		{"DELETE", v1("/rooms/{room}/legs/{leg}"), ScopeAdmin, old("/rooms/{room}/legs/{leg}"), func(w http.ResponseWriter, r *http.Request) {
			err := s.control.Kick(r.PathValue("room"), r.PathValue("leg"))
			s.audit(r, "leg kicked", err, "room", r.PathValue("room"), "leg", r.PathValue("leg"))
			writeResult(w, struct{}{}, err)
		}},
		{"POST", v1("/rooms/{room}/dial"), ScopeAdmin, old("/rooms/{room}/dial"), func(w http.ResponseWriter, r *http.Request) {
			var d DialRequest
			if !readBody(w, r, &d) {
				return
			}
			err := s.control.Dial(r.PathValue("room"), d)
			s.audit(r, "dial into room", err, "room", r.PathValue("room"), "user", d.User, "trunk", d.Trunk, "number", d.Number)
			if err != nil {
				writeResult(w, nil, err)
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "calling"})
		}},
		{"POST", v1("/rooms/{room}/play"), ScopeAdmin, old("/rooms/{room}/play"), func(w http.ResponseWriter, r *http.Request) {
			var p PlayRequest
			if !readBody(w, r, &p) {
				return
			}
			err := s.control.Play(r.PathValue("room"), p)
			s.audit(r, "prompt played", err, "room", r.PathValue("room"), "file", p.File, "leg", p.Leg)
			writeResult(w, struct{}{}, err)
		}},
		{"POST", v1("/rooms/{room}/guest-links"), ScopeAdmin, "", s.handleGuestLink},
		{"GET", v1("/registrations"), ScopeRead, old("/registrations"), func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, nonNil(s.control.Registrations()))
		}},
		{"GET", v1("/trunks"), ScopeRead, old("/trunks"), func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, nonNil(s.control.Trunks()))
		}},
		// The calls in progress; /api/v1/calls is the call history.
		{"GET", v1("/calls/active"), ScopeRead, old("/calls"), func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, nonNil(s.control.Calls()))
		}},
		{"DELETE", v1("/calls/{id}"), ScopeAdmin, old("/calls/{id}"), func(w http.ResponseWriter, r *http.Request) {
			err := s.control.Hangup(r.PathValue("id"))
			s.audit(r, "call hung up", err, "call_id", r.PathValue("id"))
			writeResult(w, struct{}{}, err)
		}},
	}
}

// mountAPI adds every route of the table to mux, behind its scope, and
// its alias.
func (s *Server) mountAPI(mux *http.ServeMux) {
	routes := s.Routes()
	mountAPINotFound(mux)
	for _, rt := range routes {
		h := s.guarded(rt)
		mux.Handle(rt.Method+" "+rt.Path, h)
		if rt.Alias != "" {
			mux.Handle(rt.Method+" "+rt.Alias, deprecated(rt.Path, h))
		}
	}
}

// guarded checks the route's scope before its handler runs.
func (s *Server) guarded(rt Route) http.HandlerFunc {
	if rt.Scope == ScopePublic {
		return rt.Handler
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.apiAllowed(w, r, rt.Scope); ok {
			rt.Handler(w, r)
		}
	}
}

// deprecated serves h at an old path, pointing to its successor (RFC 9745
// Deprecation, RFC 8288 Link).
func deprecated(successor string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Deprecation", "true")
		w.Header().Set("Link", "<"+fillPattern(successor, r)+`>; rel="successor-version"`)
		h.ServeHTTP(w, r)
	})
}

// fillPattern puts r's path values into a pattern's {wildcards}.
func fillPattern(pattern string, r *http.Request) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = url.PathEscape(r.PathValue(strings.Trim(p, "{}.")))
		}
	}
	return strings.Join(parts, "/")
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// audit logs every change made through the API, with the name of the
// token that made it (never the token).
func (s *Server) audit(r *http.Request, msg string, err error, args ...any) {
	args = append(args, "remote", r.RemoteAddr)
	if name := tokenName(r.Context()); name != "" {
		args = append(args, "token", name)
	}
	if err != nil {
		args = append(args, "error", err)
	}
	s.log.Info("REST API: "+msg, args...)
}

// maxBody is the largest request body the API reads.
const maxBody = 4096

// readBody decodes a request body strictly: an unknown field or a wrong
// type is a 400 that names it, a body over maxBody a 413.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", mb.Limit))
			return false
		}
		msg := err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("field %q: want a %s, not a JSON %s", te.Field, te.Type, te.Value)
		}
		writeError(w, http.StatusBadRequest, "bad request body: "+strings.TrimPrefix(msg, "json: "))
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
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, api.ErrForbidden): // e.g. the host of a room on another node refuses a page that no longer moderates it
		writeError(w, http.StatusForbidden, err.Error())
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}
