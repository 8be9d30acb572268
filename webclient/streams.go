package webclient

import (
	"errors"
	"net/http"

	"github.com/voxgate/voxgate/api"
)

// Streamer is implemented by a Control that starts media streams to bots
// on live calls and rooms. Without it the routes answer 501.
type Streamer interface {
	// StartCallStream forks call id's audio to a bot (it listens only).
	StartCallStream(id string, r api.StreamRequest) (api.StreamInfo, error)
	// StartRoomStream adds a bot to a room as a participant.
	StartRoomStream(room string, r api.StreamRequest) (api.StreamInfo, error)
	// Streams lists the streams started on calls and rooms.
	Streams() []api.StreamInfo
	// StopStream ends one, returning it as it was.
	StopStream(id string) (api.StreamInfo, error)
}

// StreamRequest is the body of POST .../streams.
type StreamRequest = api.StreamRequest

// StreamInfo is a media stream on a call or a room.
type StreamInfo = api.StreamInfo

func init() { routeSets = append(routeSets, (*Server).streamRoutes) }

// streamRoutes start, list and stop media streams (admin scope: a bot
// hears the calls).
func (s *Server) streamRoutes() []Route {
	return []Route{
		{"POST", APIPrefix + "/calls/{id}/streams", ScopeAdmin, "", s.handleStartStream(func(st Streamer, r *http.Request, req StreamRequest) (StreamInfo, error) {
			return st.StartCallStream(r.PathValue("id"), req)
		})},
		{"POST", APIPrefix + "/rooms/{room}/streams", ScopeAdmin, "", s.handleStartStream(func(st Streamer, r *http.Request, req StreamRequest) (StreamInfo, error) {
			return st.StartRoomStream(r.PathValue("room"), req)
		})},
		{"GET", APIPrefix + "/streams", ScopeAdmin, "", func(w http.ResponseWriter, r *http.Request) {
			st, ok := s.streamer(w)
			if ok {
				writeJSON(w, http.StatusOK, nonNil(st.Streams()))
			}
		}},
		{"DELETE", APIPrefix + "/streams/{id}", ScopeAdmin, "", func(w http.ResponseWriter, r *http.Request) {
			st, ok := s.streamer(w)
			if !ok {
				return
			}
			info, err := st.StopStream(r.PathValue("id"))
			s.audit(r, "stream stopped", err, "stream_id", r.PathValue("id"))
			writeResult(w, info, err)
		}},
	}
}

func (s *Server) streamer(w http.ResponseWriter) (Streamer, bool) {
	st, ok := s.control.(Streamer)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this server does not start media streams")
	}
	return st, ok
}

func (s *Server) handleStartStream(start func(Streamer, *http.Request, StreamRequest) (StreamInfo, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.streamer(w)
		if !ok {
			return
		}
		var req StreamRequest
		if !readBody(w, r, &req) {
			return
		}
		info, err := start(st, r, req)
		s.audit(r, "stream started", err, "url", req.URL, "call_id", r.PathValue("id"), "room", r.PathValue("room"))
		switch {
		case err == nil:
			writeJSON(w, http.StatusCreated, info)
		case errors.Is(err, api.ErrUnreachable):
			writeError(w, http.StatusBadGateway, err.Error())
		default:
			writeResult(w, nil, err)
		}
	}
}
