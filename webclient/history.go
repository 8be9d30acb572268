package webclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/voxgate/voxgate/api"
)

// History is the call history the REST API reads: call records, room
// history and the recordings' index. The store implements it (cmd/voxgate
// wires it); its lookups by id return an error wrapping api.ErrNotFound
// when there is no such record.
type History interface {
	// Calls returns records newest first, and whether more follow.
	Calls(ctx context.Context, q api.CallQuery) ([]api.CallRecord, bool, error)
	Call(ctx context.Context, id string) (api.CallRecord, error)
	RoomHistory(ctx context.Context, room string, until time.Time, limit int) ([]api.RoomEvent, error)
	Recordings(ctx context.Context, limit int) ([]api.Recording, error)
	Recording(ctx context.Context, id string) (api.Recording, error)
}

// WithHistory serves the call history under /api/v1 (calls, room history,
// recordings) from h. Without it those endpoints answer 503.
func WithHistory(h History) Option { return func(s *Server) { s.history = h } }

// Limits of the history endpoints' pages.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
)

// CallPage is one page of GET /api/v1/calls: Next is the cursor of the
// following page ("" on the last).
type CallPage struct {
	Calls []api.CallRecord `json:"calls"`
	Next  string           `json:"next,omitempty"`
}

func init() { routeSets = append(routeSets, (*Server).historyRoutes) }

// historyRoutes are the call history's endpoints (read scope).
func (s *Server) historyRoutes() []Route {
	h := func(f http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.history == nil {
				writeError(w, http.StatusServiceUnavailable, "no call history is kept: set data_dir in the config")
				return
			}
			f(w, r)
		}
	}
	v1 := func(p string) string { return APIPrefix + p }
	return []Route{
		{"GET", v1("/calls"), ScopeRead, "", h(s.handleCallHistory)},
		{"GET", v1("/calls/{id}"), ScopeRead, "", h(func(w http.ResponseWriter, r *http.Request) {
			rec, err := s.history.Call(r.Context(), r.PathValue("id"))
			s.writeHistory(w, rec, err)
		})},
		{"GET", v1("/rooms/{room}/history"), ScopeRead, "", h(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			limit, err := historyLimit(q.Get("limit"))
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			until, err := historyTime("until", q.Get("until"))
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			evs, err := s.history.RoomHistory(r.Context(), r.PathValue("room"), until, limit)
			s.writeHistory(w, RoomHistory{Room: r.PathValue("room"), History: nonNil(evs)}, err)
		})},
		{"GET", v1("/recordings"), ScopeRead, "", h(func(w http.ResponseWriter, r *http.Request) {
			limit, err := historyLimit(r.URL.Query().Get("limit"))
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			recs, err := s.history.Recordings(r.Context(), limit)
			s.writeHistory(w, Recordings{Recordings: nonNil(recs)}, err)
		})},
		{"GET", v1("/recordings/{id}"), ScopeRead, "", h(s.handleRecording)},
	}
}

// RoomHistory is GET /api/v1/rooms/{room}/history: who was in the room.
type RoomHistory struct {
	Room    string          `json:"room"`
	History []api.RoomEvent `json:"history"`
}

// Recordings is GET /api/v1/recordings: the recordings' index.
type Recordings struct {
	Recordings []api.Recording `json:"recordings"`
}

// writeHistory answers v, or 404 for a missing record, or 500 when the
// store failed (logged, not shown).
func (s *Server) writeHistory(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, api.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	default:
		s.log.Error("call history: the store failed", "error", err)
		writeError(w, http.StatusInternalServerError, "the call history could not be read")
	}
}

// handleCallHistory is GET /api/v1/calls.
func (s *Server) handleCallHistory(w http.ResponseWriter, r *http.Request) {
	q, err := parseCallQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	calls, more, err := s.history.Calls(r.Context(), q)
	if err != nil {
		s.writeHistory(w, nil, err)
		return
	}
	page := CallPage{Calls: nonNil(calls)}
	if more && len(calls) > 0 {
		last := calls[len(calls)-1]
		page.Next = encodeCursor(last.Started, last.ID)
	}
	writeJSON(w, http.StatusOK, page)
}

// parseCallQuery reads the filters of GET /api/v1/calls.
func parseCallQuery(v map[string][]string) (api.CallQuery, error) {
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	var q api.CallQuery
	var err error
	if q.Since, err = historyTime("since", get("since")); err != nil {
		return q, err
	}
	if q.Until, err = historyTime("until", get("until")); err != nil {
		return q, err
	}
	if q.Limit, err = historyLimit(get("limit")); err != nil {
		return q, err
	}
	q.Number, q.Room, q.User = get("number"), get("room"), get("user")
	switch q.Status = get("status"); q.Status {
	case "", api.CallActive, api.CallEnded:
	default:
		return q, fmt.Errorf("status: %q is not a call status (want active or ended)", q.Status)
	}
	if c := get("cursor"); c != "" {
		if q.AfterStarted, q.AfterID, err = parseCursor(c); err != nil {
			return q, err
		}
	}
	return q, nil
}

func historyTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)", name, v)
	}
	return t, nil
}

func historyLimit(v string) (int, error) {
	if v == "" {
		return defaultHistoryLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxHistoryLimit {
		return 0, fmt.Errorf("limit: %q is not a number from 1 to %d", v, maxHistoryLimit)
	}
	return n, nil
}

// A cursor is opaque to clients: base64url of "v1:<unix ns of the last
// record's start>:<its id>".
const cursorVersion = "v1"

// maxCursorID bounds the id a cursor may carry.
const maxCursorID = 128

// errCursor is every bad cursor's error: the client should start over.
var errCursor = errors.New("cursor: not a cursor this server gave out (start again without one)")

func encodeCursor(started time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + ":" + strconv.FormatInt(started.UnixNano(), 10) + ":" + id))
}

// parseCursor reads a cursor from a client (outside input).
func parseCursor(c string) (time.Time, string, error) {
	if len(c) > 256 || strings.IndexFunc(c, func(r rune) bool { return !isCursorChar(r) }) >= 0 {
		return time.Time{}, "", errCursor // the decoder would skip \r and \n
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil {
		return time.Time{}, "", errCursor
	}
	ver, rest, ok := strings.Cut(string(raw), ":")
	if !ok || ver != cursorVersion {
		return time.Time{}, "", errCursor
	}
	nsText, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" || len(id) > maxCursorID {
		return time.Time{}, "", errCursor
	}
	if strings.IndexFunc(id, func(r rune) bool { return !isCursorChar(r) && r != '.' }) >= 0 {
		return time.Time{}, "", errCursor
	}
	n, err := strconv.ParseInt(nsText, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != nsText {
		return time.Time{}, "", errCursor
	}
	return time.Unix(0, n).UTC(), id, nil
}

// isCursorChar reports whether r is in the base64url alphabet (which also
// covers the characters of record ids, with '.').
func isCursorChar(r rune) bool {
	return r == '_' || r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// handleRecording downloads one recording. The file is the one the index
// names for the id (written by voxgate itself); the request names no path,
// so it cannot reach any other file.
func (s *Server) handleRecording(w http.ResponseWriter, r *http.Request) {
	rec, err := s.history.Recording(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeHistory(w, nil, err)
		return
	}
	f, err := os.Open(rec.Path)
	if err != nil {
		s.log.Warn("recording in the index but not readable", "id", rec.ID, "error", err)
		writeError(w, http.StatusNotFound, "the recording's file is gone")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, "the recording's file is gone")
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", rec.File))
	http.ServeContent(w, r, "", st.ModTime(), f)
}
