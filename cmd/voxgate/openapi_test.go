package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// The OpenAPI check: every route of the route table is driven with real
// requests against a real gateway (switchboard, SIP side, rooms with desk
// phones in them), and every answer's status and body must be what
// openapi.json says for that route and status. Error answers of the router
// itself (404, 405) must fit the Error schema.
func TestOpenAPIConformance(t *testing.T) {
	peertest.Need(t, "baresip")
	const adminTok, readTok, metricsTok = "oa-admin-token", "oa-read-token", "oa-metrics-token"
	prompts := t.TempDir()
	peertest.ToneWAV(t, filepath.Join(prompts, "hello.wav"), 8000, 500, 0.5)
	no := false
	g := startGateway(t, func(cfg *Config) {
		noTones(cfg)
		cfg.Rooms.PromptDir = prompts
		cfg.Rooms.RecordDir = t.TempDir() // every room records from its first participant
		cfg.Web.Tokens = []webclient.Token{
			{Name: "admin", SHA256: webclient.HashToken(adminTok), Scopes: []string{"admin"}},
			{Name: "read", SHA256: webclient.HashToken(readTok), Scopes: []string{"read"}},
			{Name: "metrics", SHA256: webclient.HashToken(metricsTok), Scopes: []string{"metrics"}},
		}
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:9", Register: &no}}
	})
	spec := loadSpec(t)
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 440, Register: true, Dial: "8002"})
	defer alice.Stop()
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "opus/48000/2", Tone: 660, Dial: "8002"})
	defer bob.Stop()
	room := waitRoom(t, g, "002", func(r webclient.RoomInfo) bool { return len(r.Legs) == 2 })
	legs := map[string]string{}
	for _, l := range room.Legs {
		legs[l.Name] = url.PathEscape(l.ID)
	}
	var calls []webclient.CallInfo
	g.api(t, "GET", "/api/v1/calls/active", "", &calls)
	aliceCall := ""
	for _, c := range calls {
		if c.From == "alice" {
			aliceCall = url.PathEscape(c.ID)
		}
	}
	if len(calls) != 2 || aliceCall == "" {
		t.Fatalf("calls %+v", calls)
	}
	// The call history: alice's record and the room's recording reach the
	// store a moment after the call is routed and the room records.
	var aliceRecord, recording string
	deadline := time.Now().Add(5 * time.Second)
	for aliceRecord == "" || recording == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no call record of alice (%q) or no recording (%q) in the history", aliceRecord, recording)
		}
		var page webclient.CallPage
		g.api(t, "GET", "/api/v1/calls?status=active", "", &page)
		for _, c := range page.Calls {
			if c.Caller == "alice" {
				aliceRecord = url.PathEscape(c.ID)
			}
		}
		var recs webclient.Recordings
		g.api(t, "GET", "/api/v1/recordings", "", &recs)
		if len(recs.Recordings) > 0 {
			recording = url.PathEscape(recs.Recordings[0].ID)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A bot for the media stream routes, and a stream to stop.
	bot := newRawTestBot(t, 0)
	var started webclient.StreamInfo
	if code := g.api(t, "POST", "/api/v1/rooms/002/streams", `{"url":"`+bot.url()+`","framing":"raw"}`, &started); code != 201 {
		t.Fatalf("a room stream: %d", code)
	}

	// Which route a request reaches: the table's patterns in a mux of their own.
	routes := g.app.web.Routes()
	byPattern := http.NewServeMux()
	for _, rt := range routes {
		byPattern.HandleFunc(rt.Method+" "+rt.Path, func(http.ResponseWriter, *http.Request) {})
		if rt.Alias != "" {
			byPattern.HandleFunc(rt.Method+" "+rt.Alias, func(http.ResponseWriter, *http.Request) {})
		}
	}
	route := func(r *http.Request) (webclient.Route, bool) {
		_, pattern := byPattern.Handler(r)
		for _, rt := range routes {
			if pattern == rt.Method+" "+rt.Path || pattern == rt.Method+" "+rt.Alias {
				return rt, true
			}
		}
		return webclient.Route{}, false
	}

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	ok := map[string]bool{} // routes answered 2xx
	big := `{"locked":true,"pad":"` + strings.Repeat("x", 5000) + `"}`
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/api/v1/openapi.json", "", "", 200},
		{"POST", "/api/v1/login", "", `{"user":"alice","password":"wrong"}`, 401},
		{"POST", "/api/v1/login", "", `{"user":`, 400},
		{"POST", "/api/v1/login", "", `{"user":"` + strings.Repeat("a", 5000) + `"}`, 413},
		{"GET", "/api/v1/session", "", "", 401},
		{"GET", "/api/v1/session/calls", "", "", 401},
		{"POST", "/api/v1/login", "", `{"user":"alice","password":"alice-secret"}`, 200},
		{"GET", "/api/v1/session", "", "", 200},
		{"GET", "/api/session", "", "", 200}, // an alias
		{"GET", "/api/v1/session/calls", "", "", 200},
		{"POST", "/api/v1/logout", "", "", 200},
		{"GET", "/metrics", metricsTok, "", 200},
		{"GET", "/metrics", readTok, "", 403},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/api/v1/rooms", readTok, "", 200},
		{"GET", "/api/rooms", readTok, "", 200},
		{"GET", "/api/v1/rooms", metricsTok, "", 403},
		{"GET", "/api/v1/rooms", "wrong-token", "", 401},
		{"GET", "/api/v1/rooms/002", readTok, "", 200},
		{"GET", "/api/v1/rooms/nope", readTok, "", 404},
		{"PATCH", "/api/v1/rooms/002", readTok, `{"locked":true}`, 403},
		{"PATCH", "/api/v1/rooms/002", adminTok, `{"locked":true,"max":5}`, 200},
		{"PATCH", "/api/v1/rooms/002", adminTok, `{"recording":true}`, 409}, // records already (rooms.record_dir)
		{"PATCH", "/api/v1/rooms/002", adminTok, `{"recording":false}`, 200},
		{"PATCH", "/api/v1/rooms/002", adminTok, `{"recording":true}`, 200},
		{"PATCH", "/api/v1/rooms/002", adminTok, `{"lockd":true}`, 400},
		{"PATCH", "/api/v1/rooms/002", adminTok, big, 413},
		{"PATCH", "/api/v1/rooms/nope", adminTok, `{"locked":true}`, 404},
		{"PATCH", "/api/v1/rooms/002/legs/" + legs["alice"], adminTok, `{"muted":true,"gain_db":-3}`, 200},
		{"PATCH", "/api/v1/rooms/002/legs/" + legs["alice"], adminTok, `{"gain_db":99}`, 400},
		{"PATCH", "/api/v1/rooms/002/legs/nobody", adminTok, `{"muted":true}`, 404},
		{"POST", "/api/v1/rooms/002/play", adminTok, `{"file":"hello.wav"}`, 200},
		{"POST", "/api/v1/rooms/002/play", adminTok, `{"file":"missing.wav"}`, 404},
		{"POST", "/api/v1/rooms/002/play", adminTok, `{"file":"../etc/passwd"}`, 400},
		{"POST", "/api/v1/rooms/002/dial", adminTok, `{"user":"carol"}`, 409}, // no phone, no page
		{"POST", "/api/v1/rooms/002/dial", adminTok, `{}`, 400},
		{"POST", "/api/v1/rooms/002/dial", adminTok, `{"trunk":"nowhere","number":"123"}`, 404},
		{"POST", "/api/v1/rooms/002/dial", adminTok, `{"trunk":"carrier","number":"123","timeout":1}`, 202},
		{"POST", "/api/v1/rooms/002/guest-links", adminTok, `{"ttl_seconds":120,"name":"Visitor"}`, 201},
		{"POST", "/api/v1/rooms/002/guest-links", adminTok, `{"ttl_seconds":1}`, 400},
		{"POST", "/api/v1/rooms/002/streams", adminTok, `{"url":"` + bot.url() + `","tracks":"both"}`, 201},
		{"POST", "/api/v1/rooms/002/streams", readTok, `{"url":"` + bot.url() + `"}`, 403},
		{"POST", "/api/v1/rooms/002/streams", adminTok, `{"url":"http://bot"}`, 400},
		{"POST", "/api/v1/rooms/002/streams", adminTok, `{"url":"ws://bot","framing":"sip"}`, 400},
		{"POST", "/api/v1/rooms/nope/streams", adminTok, `{"url":"` + bot.url() + `"}`, 404},
		{"POST", "/api/v1/calls/" + aliceCall + "/streams", adminTok, `{"url":"` + bot.url() + `","framing":"raw","tracks":"both","rate":16000}`, 201},
		{"POST", "/api/v1/calls/" + aliceCall + "/streams", adminTok, `{"url":"` + bot.url() + `"}`, 409}, // forked already
		{"POST", "/api/v1/calls/" + aliceCall + "/streams", adminTok, `{"url":"ws://127.0.0.1:9/"}`, 502},
		{"POST", "/api/v1/calls/nope/streams", adminTok, `{"url":"` + bot.url() + `"}`, 404},
		{"GET", "/api/v1/streams", adminTok, "", 200},
		{"GET", "/api/v1/streams", readTok, "", 403},
		{"DELETE", "/api/v1/streams/" + started.ID, adminTok, "", 200},
		{"DELETE", "/api/v1/streams/nope", adminTok, "", 404},
		{"GET", "/api/v1/registrations", readTok, "", 200},
		{"GET", "/api/v1/trunks", readTok, "", 200},
		{"GET", "/api/v1/calls/active", readTok, "", 200},
		{"GET", "/api/v1/calls?number=alice&limit=1", readTok, "", 200},
		{"GET", "/api/v1/calls?since=yesterday", readTok, "", 400},
		{"GET", "/api/v1/calls", metricsTok, "", 403},
		{"GET", "/api/v1/calls/" + aliceRecord, readTok, "", 200},
		{"GET", "/api/v1/calls/nope", readTok, "", 404},
		{"GET", "/api/v1/rooms/002/history", readTok, "", 200},
		{"GET", "/api/v1/rooms/002/history?limit=0", readTok, "", 400},
		{"GET", "/api/v1/recordings", readTok, "", 200},
		{"GET", "/api/v1/recordings/" + recording, readTok, "", 200},
		{"GET", "/api/v1/recordings/nope", readTok, "", 404},
		{"POST", "/api/v1/rooms/002/legs/" + legs["alice"] + "/admit", adminTok, "", 200}, // not waiting: as it was
		{"POST", "/api/v1/rooms/002/legs/nobody/admit", adminTok, "", 404},
		{"GET", "/api/v1/pin-callers", readTok, "", 200},
		{"GET", "/api/v1/pin-callers", metricsTok, "", 403},
		{"POST", "/api/v1/rooms/002/legs/" + legs["alice"] + "/move", adminTok, `{"room":"no room!"}`, 400},
		{"POST", "/api/v1/rooms/002/legs/nobody/move", adminTok, `{"room":"003"}`, 404},
		{"POST", "/api/v1/rooms/002/legs/" + legs["alice"] + "/move", adminTok, `{"room":"003"}`, 200},
		{"POST", "/api/v1/calls/nope/transfer", adminTok, `{"to":"8003"}`, 404},
		{"POST", "/api/v1/calls/" + aliceCall + "/transfer", readTok, `{"to":"8003"}`, 403},
		{"POST", "/api/v1/calls/" + aliceCall + "/transfer", adminTok, `{"to":""}`, 400},
		{"POST", "/api/v1/calls/" + aliceCall + "/transfer", adminTok, `{"to":"9196"}`, 403}, // the echo: not a transfer's target
		{"POST", "/api/v1/calls/" + aliceCall + "/transfer", adminTok, `{"to":"8004"}`, 202}, // alice moves on from room 003 to 004
		{"DELETE", "/api/v1/calls/nope", adminTok, "", 404},
		{"DELETE", "/api/v1/rooms/002/legs/nobody", adminTok, "", 404},
		{"DELETE", "/api/v1/rooms/002/legs/" + legs["bob"], adminTok, "", 200},
		{"DELETE", "/api/calls/" + aliceCall, adminTok, "", 200}, // an alias (bob's was kicked)
		{"GET", "/api/v1/no-such-thing", readTok, "", 404},
		{"POST", "/api/v1/rooms", adminTok, "", 405},
	} {
		name := c.method + " " + c.path
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, g.web+c.path, strings.NewReader(c.body))
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Fatalf("%d %s, want %d", res.StatusCode, b, c.want)
			}
			rt, found := route(req)
			if !found { // the router's own answer
				if err := spec.validateBody(spec.ref("#/components/schemas/Error"), res, b); err != nil {
					t.Fatalf("%v in %s", err, b)
				}
				return
			}
			if rt.Alias != "" && strings.HasPrefix(c.path, "/api/") && !strings.HasPrefix(c.path, webclient.APIPrefix+"/") &&
				res.Header.Get("Deprecation") != "true" {
				t.Errorf("the alias %s has no Deprecation header", c.path)
			}
			if err := spec.validate(rt, res, b); err != nil {
				t.Fatalf("%v in %s", err, b)
			}
			if res.StatusCode < 300 {
				ok[rt.Method+" "+rt.Path] = true
			}
		})
	}
	for _, rt := range routes {
		if !ok[rt.Method+" "+rt.Path] {
			t.Errorf("%s %s was never driven to a 2xx answer: add a case", rt.Method, rt.Path)
		}
	}
}

// spec is openapi.json decoded, with a JSON-schema subset validator: type
// (arrays of types for nullable), required, properties,
// additionalProperties: false, items, enum, oneOf, minimum, maximum,
// format date-time, $ref.
type spec map[string]any

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	if err := json.Unmarshal(webclient.OpenAPI(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// ref resolves a local $ref ("#/components/...").
func (s spec) ref(ref string) map[string]any {
	var node any = map[string]any(s)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := node.(map[string]any)
		node = m[part]
	}
	m, _ := node.(map[string]any)
	return m
}

func (s spec) deref(m map[string]any) map[string]any {
	for m != nil && m["$ref"] != nil {
		m = s.ref(m["$ref"].(string))
	}
	return m
}

// validate checks an answer of rt against its operation's response for the
// status (or its default).
func (s spec) validate(rt webclient.Route, res *http.Response, body []byte) error {
	paths, _ := s["paths"].(map[string]any)
	item, _ := paths[rt.Path].(map[string]any)
	op, _ := item[strings.ToLower(rt.Method)].(map[string]any)
	if op == nil {
		return fmt.Errorf("%s %s is not in openapi.json", rt.Method, rt.Path)
	}
	responses, _ := op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(res.StatusCode)].(map[string]any)
	if !ok {
		if r, ok = responses["default"].(map[string]any); !ok || res.StatusCode < 400 {
			return fmt.Errorf("status %d is not documented for %s %s", res.StatusCode, rt.Method, rt.Path)
		}
	}
	r = s.deref(r)
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		return nil
	}
	ctype, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	media, ok := content[ctype].(map[string]any)
	if !ok {
		return fmt.Errorf("Content-Type %q is not documented for %d", ctype, res.StatusCode)
	}
	schema, _ := media["schema"].(map[string]any)
	if ctype != "application/json" {
		return nil
	}
	return s.validateBody(schema, res, body)
}

func (s spec) validateBody(schema map[string]any, res *http.Response, body []byte) error {
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return s.check(schema, v, "$")
}

// check validates v against schema; at names where v is.
func (s spec) check(schema map[string]any, v any, at string) error {
	schema = s.deref(schema)
	if schema == nil {
		return fmt.Errorf("%s: a schema is missing", at)
	}
	if one, ok := schema["oneOf"].([]any); ok {
		n := 0
		for _, alt := range one {
			m, _ := alt.(map[string]any)
			if s.check(m, v, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf, want 1", at, n)
		}
	}
	if t, ok := schema["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(typ string) bool { return isType(typ, v) }) {
			return fmt.Errorf("%s: %T %v is not %v", at, v, v, types)
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	if f, ok := v.(float64); ok {
		if lo, ok := schema["minimum"].(float64); ok && f < lo {
			return fmt.Errorf("%s: %v < minimum %v", at, f, lo)
		}
		if hi, ok := schema["maximum"].(float64); ok && f > hi {
			return fmt.Errorf("%s: %v > maximum %v", at, f, hi)
		}
	}
	if str, ok := v.(string); ok && schema["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return fmt.Errorf("%s: %q is not a date-time", at, str)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					return fmt.Errorf("%s: required %q is missing", at, r)
				}
			}
		}
		for k, x := range obj {
			p, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					return fmt.Errorf("%s: %q is not in the schema", at, k)
				}
				continue
			}
			if err := s.check(p, x, at+"."+k); err != nil {
				return err
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				if err := s.check(items, x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func isType(typ string, v any) bool {
	switch typ {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// The validator itself refuses what it should (a check that cannot fail is
// no check).
func TestSchemaSubsetValidator(t *testing.T) {
	s := loadSpec(t)
	room := s.ref("#/components/schemas/Room")
	good := map[string]any{"name": "1", "rate": 16000.0, "locked": false, "max": 0.0, "participants": 0.0, "remote": false, "legs": []any{}}
	if err := s.check(room, good, "$"); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(map[string]any){
		"missing required": func(m map[string]any) { delete(m, "rate") },
		"wrong type":       func(m map[string]any) { m["locked"] = "no" },
		"not an integer":   func(m map[string]any) { m["rate"] = 1.5 },
		"unknown field":    func(m map[string]any) { m["colour"] = "red" },
		"bad item":         func(m map[string]any) { m["legs"] = []any{map[string]any{"id": "x"}} },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		mutate(m)
		if err := s.check(room, m, "$"); err == nil {
			t.Errorf("%s: accepted %v", name, m)
		}
	}
	e := s.ref("#/components/schemas/Error")
	if s.check(e, map[string]any{"error": "x", "status": 403.0, "scope": "root"}, "$") == nil {
		t.Error("a scope outside the enum was accepted")
	}
	if s.check(s.ref("#/components/schemas/GuestLink"), map[string]any{"url": "u", "token": "t", "expires": "tomorrow"}, "$") == nil {
		t.Error("a bad date-time was accepted")
	}
	nullable := map[string]any{"type": []any{"string", "null"}}
	if s.check(nullable, nil, "$") != nil || s.check(nullable, 1.0, "$") == nil {
		t.Error("type arrays (nullable) are not checked")
	}
}
