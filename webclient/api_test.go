package webclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/api"
)

// fakeControl records what the API asked of it.
type fakeControl struct {
	changes []string
}

func (f *fakeControl) Rooms() []RoomInfo {
	return []RoomInfo{{Name: "8001", Rate: 16000, Legs: []LegInfo{{ID: "alice/c1", Name: "alice"}}}}
}
func (f *fakeControl) Room(name string) (RoomInfo, error) {
	if name != "8001" {
		return RoomInfo{}, fmt.Errorf("room %q: %w", name, ErrNotFound)
	}
	return f.Rooms()[0], nil
}
func (f *fakeControl) ChangeRoom(name string, ch RoomChange) (RoomInfo, error) {
	if ch.Recording != nil && *ch.Recording {
		return RoomInfo{}, fmt.Errorf("records already: %w", ErrConflict)
	}
	f.changes = append(f.changes, fmt.Sprintf("room %s locked=%v", name, *ch.Locked))
	return f.Room(name)
}
func (f *fakeControl) ChangeLeg(room, leg string, ch LegChange) (LegInfo, error) {
	if leg != "alice/c1" {
		return LegInfo{}, fmt.Errorf("leg %q: %w", leg, ErrNotFound)
	}
	f.changes = append(f.changes, fmt.Sprintf("leg %s/%s muted=%v", room, leg, *ch.Muted))
	return LegInfo{ID: leg, Muted: *ch.Muted}, nil
}
func (f *fakeControl) Kick(room, leg string) error {
	f.changes = append(f.changes, "kick "+room+" "+leg)
	return nil
}
func (f *fakeControl) Registrations() []Registration { return nil }
func (f *fakeControl) Play(room string, p PlayRequest) error {
	f.changes = append(f.changes, "play "+room+" "+p.File)
	return nil
}
func (f *fakeControl) Dial(room string, d DialRequest) error {
	if d.User == "" && d.Trunk == "" {
		return errors.New("give user or trunk")
	}
	f.changes = append(f.changes, "dial "+room+" "+d.User)
	return nil
}
func (f *fakeControl) Trunks() []TrunkInfo    { return []TrunkInfo{{Name: "carrier", Registered: true}} }
func (f *fakeControl) Calls() []CallInfo      { return nil }
func (f *fakeControl) Hangup(id string) error { return fmt.Errorf("call %q: %w", id, ErrNotFound) }
func apiWeb(t *testing.T, token string, c Control, opts ...Option) string {
	t.Helper()
	return apiWebConfig(t, Config{APIToken: token}, c, opts...)
}

// apiWebConfig starts a web server of cfg (its addresses filled in) with
// the REST API over c.
func apiWebConfig(t *testing.T, cfg Config, c Control, opts ...Option) string {
	t.Helper()
	cfg.Listen, cfg.ICEIPs, cfg.UDPPorts = "127.0.0.1:0", []string{"127.0.0.1"}, "41000-41999"
	s, err := NewServer(cfg,
		append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithControl(c)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr().String()
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRESTAPI(t *testing.T) {
	fc := &fakeControl{}
	base := apiWeb(t, "s3cret-token", fc)
	off := apiWeb(t, "", fc)
	for _, c := range []struct {
		name, method, path, token, body string
		code                            int
		has                             string
	}{
		{"off without a token in the config", "GET", off + "/api/rooms", "s3cret-token", "", 403, "set web.api_token"},
		{"metrics off too", "GET", off + "/metrics", "", "", 403, "set web.api_token"},
		{"no token", "GET", base + "/api/rooms", "", "", 401, "Bearer"},
		{"wrong token", "GET", base + "/api/rooms", "s3cret-tokem", "", 401, "Bearer"},
		{"rooms", "GET", base + "/api/rooms", "s3cret-token", "", 200, `"name":"alice"`},
		{"one room", "GET", base + "/api/rooms/8001", "s3cret-token", "", 200, `"rate":16000`},
		{"no such room", "GET", base + "/api/rooms/9", "s3cret-token", "", 404, `room \"9\": not found`},
		{"lock", "PATCH", base + "/api/rooms/8001", "s3cret-token", `{"locked":true}`, 200, `"name":"8001"`},
		{"recording twice", "PATCH", base + "/api/rooms/8001", "s3cret-token", `{"recording":true}`, 409, "records already"},
		// A browser leg's id has a slash: escaped in the path, whole in the handler.
		{"mute a browser leg", "PATCH", base + "/api/rooms/8001/legs/alice%2Fc1", "s3cret-token", `{"muted":true}`, 200, `"muted":true`},
		{"unknown field", "PATCH", base + "/api/rooms/8001/legs/alice%2Fc1", "s3cret-token", `{"mute":true}`, 400, `unknown field \"mute\"`},
		{"wrong type", "PATCH", base + "/api/rooms/8001/legs/alice%2Fc1", "s3cret-token", `{"muted":"yes"}`, 400, `field \"muted\": want a bool, not a JSON string`},
		{"not JSON", "PATCH", base + "/api/rooms/8001/legs/alice%2Fc1", "s3cret-token", `muted`, 400, "bad request body"},
		{"no such leg", "PATCH", base + "/api/rooms/8001/legs/bob", "s3cret-token", `{"muted":true}`, 404, "not found"},
		{"dial a user into a room", "POST", base + "/api/rooms/8001/dial", "s3cret-token", `{"user":"bob"}`, 202, "calling"},
		{"dial nobody", "POST", base + "/api/rooms/8001/dial", "s3cret-token", `{}`, 400, "give user or trunk"},
		{"play a prompt", "POST", base + "/api/rooms/8001/play", "s3cret-token", `{"file":"welcome.wav"}`, 200, "{}"},
		{"kick", "DELETE", base + "/api/rooms/8001/legs/alice%2Fc1", "s3cret-token", "", 200, "{}"},
		{"trunks", "GET", base + "/api/trunks", "s3cret-token", "", 200, `"registered":true`},
		{"empty lists are []", "GET", base + "/api/calls", "s3cret-token", "", 200, "[]"},
		{"hang up an unknown call", "DELETE", base + "/api/calls/x", "s3cret-token", "", 404, "not found"},
		{"wrong method", "POST", base + "/api/rooms", "s3cret-token", "", 405, `"status":405`},
		{"too big a body", "PATCH", base + "/api/v1/rooms/8001", "s3cret-token", `{"locked":true,"x":"` + strings.Repeat("a", 5000) + `"}`, 413, "over 4096 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := call(t, c.method, c.path, c.token, c.body)
			if code != c.code || !strings.Contains(body, c.has) {
				t.Fatalf("%s %s: %d %s, want %d with %q", c.method, c.path, code, body, c.code, c.has)
			}
			if code >= 400 {
				var e APIError
				if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || e.Status != code {
					t.Fatalf("error answer %q is not {\"error\": ...}", body)
				}
			}
		})
	}
	want := []string{"room 8001 locked=true", "leg 8001/alice/c1 muted=true", "dial 8001 bob", "play 8001 welcome.wav", "kick 8001 alice/c1"}
	if fmt.Sprint(fc.changes) != fmt.Sprint(want) {
		t.Fatalf("control saw %q, want %q", fc.changes, want)
	}
}

// A Control's error is answered with its HTTP code, whether the room is
// here or its host on another node refused the change (the entering node
// returns the host's error with the same kind).
func TestWriteResultStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, http.StatusOK},
		{fmt.Errorf("leg %s: %w", "x", api.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("records already: %w", api.ErrConflict), http.StatusConflict},
		{fmt.Errorf("only a moderator: %w", api.ErrForbidden), http.StatusForbidden},
		{errors.New("the node hosting the room did not answer the command"), http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		writeResult(rec, struct{}{}, tc.err)
		if rec.Code != tc.want {
			t.Errorf("%v: %d, want %d", tc.err, rec.Code, tc.want)
		}
		if tc.err != nil && !strings.Contains(rec.Body.String(), tc.err.Error()) {
			t.Errorf("%v: body %s does not say it", tc.err, rec.Body)
		}
	}
}
