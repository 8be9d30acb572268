package webclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/store"
)

var h0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// historyWeb is a web server over a real store holding n calls: call i
// starts at h0 + i/3 s (three share each start), caller u<i%4>, callee
// n<i%5>; every seventh is still active; even ones were in room r<i%3>.
func historyWeb(t *testing.T, n int) (string, *store.SQLite) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "voxgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range n {
		r := api.CallRecord{ID: fmt.Sprintf("call_%03d", i), CallID: fmt.Sprintf("leg%d@host", i), Origin: "user", Action: "dial",
			Caller: fmt.Sprintf("u%d", i%4), Callee: fmt.Sprintf("n%d", i%5), Started: h0.Add(time.Duration(i/3) * time.Second)}
		if i%2 == 0 {
			r.Action, r.Room = "room", fmt.Sprintf("r%d", i%3)
		}
		if err := st.CallStarted(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%7 != 0 {
			legs := []api.CallLeg{{ID: r.CallID, Role: "caller", Name: r.Caller, Codec: "PCMU", Rate: 8000, Joined: r.Started,
				Quality: api.LegQuality{PacketsReceived: 100, PacketsExpected: 100, MOS: 4.38}}}
			if err := st.CallEnded(ctx, r.ID, r.Started.Add(time.Minute), api.HangupCause{By: "caller"}, legs); err != nil {
				t.Fatal(err)
			}
		}
	}
	return apiWeb(t, "tok", &fakeControl{}, WithHistory(st)), st
}

func getPage(t *testing.T, u string) (int, CallPage, string) {
	t.Helper()
	code, body := call(t, "GET", u, "tok", "")
	var p CallPage
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%s: %v\n%s", u, err, body)
		}
	}
	return code, p, body
}

// Paging through the whole history with the cursor returns every call once,
// newest first, whatever the page size; with filters too.
func TestHistoryPagination(t *testing.T) {
	base, _ := historyWeb(t, 57)
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"all, pages of 10", "limit=10", 57},
		{"all, pages of 1", "limit=1", 57},
		{"all, default page", "", 57},
		{"ended, pages of 4", "status=ended&limit=4", 57 - 9},
		{"caller u1, pages of 3", "number=u1&limit=3", 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			var prev *api.CallRecord
			next := ""
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				q, _ := url.ParseQuery(tc.query)
				if next != "" {
					q.Set("cursor", next)
				}
				code, p, body := getPage(t, base+"/api/v1/calls?"+q.Encode())
				if code != 200 {
					t.Fatalf("%d %s", code, body)
				}
				for i := range p.Calls {
					c := p.Calls[i]
					if seen[c.ID] {
						t.Fatalf("call %s returned twice", c.ID)
					}
					seen[c.ID] = true
					if prev != nil && (c.Started.After(prev.Started) || (c.Started.Equal(prev.Started) && c.ID > prev.ID)) {
						t.Fatalf("%s after %s: not newest first", c.ID, prev.ID)
					}
					prev = &c
				}
				if next = p.Next; next == "" {
					break
				}
			}
			if len(seen) != tc.want {
				t.Fatalf("%d calls seen, want %d", len(seen), tc.want)
			}
		})
	}
}

func TestHistoryFilters(t *testing.T) {
	base, _ := historyWeb(t, 30)
	ids := func(p CallPage) string {
		var out []string
		for _, c := range p.Calls {
			out = append(out, strings.TrimPrefix(c.ID, "call_"))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ query, want string }{
		{"limit=4", "029,028,027,026"},
		{"since=2026-03-01T12:00:09Z", "029,028,027"},
		{"until=2026-03-01T12:00:01Z", "002,001,000"},
		{"since=2026-03-01T12:00:02Z&until=2026-03-01T12:00:03Z", "008,007,006"},
		{"number=n3&limit=3", "028,023,018"},
		{"user=u2&limit=2", "026,022"},
		{"room=r1&limit=3", "028,022,016"},
		{"status=active", "028,021,014,007,000"},
		{"number=nobody", ""},
	} {
		code, p, body := getPage(t, base+"/api/v1/calls?"+tc.query)
		if code != 200 || ids(p) != tc.want {
			t.Errorf("?%s: %d %q, want %q\n%s", tc.query, code, ids(p), tc.want, body)
		}
	}
	for _, bad := range []struct{ query, has string }{
		{"since=yesterday", "RFC 3339"},
		{"until=2026-03-01", "RFC 3339"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"status=ringing", "active or ended"},
		{"cursor=bm9wZQ", "cursor"},
	} {
		code, body := call(t, "GET", base+"/api/v1/calls?"+bad.query, "tok", "")
		if code != 400 || !strings.Contains(body, bad.has) {
			t.Errorf("?%s: %d %s, want 400 naming %s", bad.query, code, body, bad.has)
		}
	}
	if code, _ := call(t, "GET", base+"/api/v1/calls", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
}

func TestHistoryOneCall(t *testing.T) {
	base, _ := historyWeb(t, 3)
	code, body := call(t, "GET", base+"/api/v1/calls/call_001", "tok", "")
	var r api.CallRecord
	if code != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if r.ID != "call_001" || r.Status != "ended" || len(r.Legs) != 1 || r.Legs[0].Quality.MOS != 4.38 || r.Cause.By != "caller" {
		t.Fatalf("record %+v", r)
	}
	if code, body := call(t, "GET", base+"/api/v1/calls/call_999", "tok", ""); code != 404 || !strings.Contains(body, "not found") {
		t.Fatalf("unknown call: %d %s", code, body)
	}
	// The live calls endpoint is unchanged.
	if code, body := call(t, "GET", base+"/api/calls", "tok", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("GET /api/calls: %d %s", code, body)
	}
}

func TestHistoryRecordings(t *testing.T) {
	ctx := context.Background()
	base, st := historyWeb(t, 0)
	dir := t.TempDir()
	wav := filepath.Join(dir, "room-8001-20260301T120000Z.wav")
	if err := os.WriteFile(wav, []byte("RIFF....WAVEfmt fake"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordingStarted(ctx, api.Recording{ID: "rec_1", Room: "8001", Path: wav, Start: h0}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordingEnded(ctx, "rec_1", h0.Add(time.Minute), 20); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordingStarted(ctx, api.Recording{ID: "rec_gone", Room: "8002", Path: filepath.Join(dir, "gone.wav"), Start: h0}); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "GET", base+"/api/v1/recordings", "tok", "")
	if code != 200 || !strings.Contains(body, `"file":"room-8001-20260301T120000Z.wav"`) || !strings.Contains(body, `"size":20`) || strings.Contains(body, dir) {
		t.Fatalf("index: %d %s", code, body)
	}
	code, body = call(t, "GET", base+"/api/v1/recordings/rec_1", "tok", "")
	if code != 200 || body != "RIFF....WAVEfmt fake" {
		t.Fatalf("download: %d %q", code, body)
	}
	for _, id := range []string{"rec_gone", "nope", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"} {
		if code, body := call(t, "GET", base+"/api/v1/recordings/"+id, "tok", ""); code != 404 {
			t.Errorf("recording %s: %d %s, want 404", id, code, body)
		}
	}
}

func TestHistoryRoom(t *testing.T) {
	ctx := context.Background()
	base, st := historyWeb(t, 0)
	if err := st.LegJoined(ctx, api.RoomEvent{Room: "8001", Leg: "a", Name: "alice", Joined: h0}); err != nil {
		t.Fatal(err)
	}
	if err := st.LegLeft(ctx, "8001", "a", h0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "GET", base+"/api/v1/rooms/8001/history", "tok", "")
	if code != 200 || !strings.Contains(body, `"name":"alice"`) || !strings.Contains(body, `"left":"2026-03-01T12:01:00Z"`) {
		t.Fatalf("%d %s", code, body)
	}
}

func TestHistoryOff(t *testing.T) {
	base := apiWeb(t, "tok", &fakeControl{})
	if code, body := call(t, "GET", base+"/api/v1/calls", "tok", ""); code != 503 || !strings.Contains(body, "data_dir") {
		t.Fatalf("without a store: %d %s", code, body)
	}
}

// The cursor parser takes outside input: it never panics, and what it
// accepts is exactly what encodeCursor makes.
func FuzzParseCursor(f *testing.F) {
	f.Add(encodeCursor(h0, "call_0123abcd"))
	f.Add("")
	f.Add("bm9wZQ")
	f.Add("djE6MTIzOmE")
	f.Add("djE6LTE6YQ")
	f.Add(strings.Repeat("A", 300))
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := parseCursor(c)
		if err != nil {
			return
		}
		if got := encodeCursor(at, id); got != c {
			t.Fatalf("accepted %q but it encodes back as %q", c, got)
		}
	})
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"call_1", "x", strings.Repeat("a", maxCursorID)} {
		at := h0.Add(123 * time.Nanosecond)
		c := encodeCursor(at, id)
		gotAt, gotID, err := parseCursor(c)
		if err != nil || !gotAt.Equal(at) || gotID != id {
			t.Errorf("round trip of %s: %v %q %v", id, gotAt, gotID, err)
		}
	}
	for _, bad := range []string{"", "!!!", encodeCursor(h0, "a b"), encodeCursor(h0, strings.Repeat("a", maxCursorID+1)),
		encodeCursor(time.Unix(0, -5), "a")} {
		if _, _, err := parseCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}
