package dialplan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/internal/config"
)

const plan = `
contexts:
  internal:
    allow_trunks: true
    rules:
      - number: "9196"
        echo: {}
      - prefix: "8"
        room: {name: "$1"}
      - pattern: '\+1(\d{10})'
        dial: {trunk: carrier, number: "$1", prepend: "1", caller_id: "$caller"}
      - number: "7000"
        pin: {prompt: pin.wav, room: {name: bridge, pin: "1234"}}
      - pattern: '[a-z]+'
        dial: {user: "$number"}
      - number: "666"
        caller: alice
        reject: {status: 403, reason: "not you"}
  public:
    rules:
      - number: "9196"
        echo: {}
      - goto: lobby
  lobby:
    rules:
      - prefix: "8"
        room: {}
      - reject: {status: 404, reason: "Not Found"}
  from-carrier:
    rules:
      - number: "15551230099"
        pin: {room: {name: bridge, pin: "4321"}}
origins:
  user: internal
  web: internal
  guest: public
  trunks: {carrier: from-carrier}
`

func mustParse(t *testing.T, s string) *Plan {
	t.Helper()
	p, err := Parse("plan.yaml", []byte(s), Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoute(t *testing.T) {
	p := mustParse(t, plan)
	cases := []struct {
		ctx, number, caller string
		kind                string
		check               func(Action) bool
	}{
		{"internal", "9196", "alice", Echo, nil},
		{"internal", "8001", "alice", Room, func(a Action) bool { return a.Room.Name == "001" }},
		{"internal", "+15551230001", "alice", Dial, func(a Action) bool {
			return a.Dial.Trunk == "carrier" && a.Dial.Number == "15551230001" && a.Dial.CallerID == "alice" && a.Dial.Timeout == 30
		}},
		{"internal", "7000", "bob", PIN, func(a Action) bool { return a.PIN.Room.PIN == "1234" && a.PIN.Tries == 3 }},
		{"internal", "bob", "alice", Dial, func(a Action) bool { return a.Dial.User == "bob" }},
		{"public", "8002", "x", Room, func(a Action) bool { return a.Room.Name == "002" && a.Context == "lobby" }},
		{"public", "+15551230001", "x", Reject, func(a Action) bool { return a.Reject.Status == 404 }},
		{p.ContextFor("trunk:carrier"), "15551230099", "", PIN, func(a Action) bool { return a.PIN.Room.Name == "bridge" }},
	}
	for _, c := range cases {
		a, err := p.Route(Call{Context: c.ctx, Number: c.number, Caller: c.caller})
		if err != nil || a.Kind != c.kind || (c.check != nil && !c.check(a)) {
			t.Errorf("%s %s: %+v %v", c.ctx, c.number, a, err)
		}
	}
	if _, err := p.Route(Call{Context: "internal", Number: "12"}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("no rule: %v", err)
	}
	if p.ContextFor("guest") != "public" || p.ContextFor("trunk:nope") != "" {
		t.Error("ContextFor")
	}
}

// Every bad dialplan names the file, the line and the field.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		field      string
		err        error
	}{
		{"syntax", "contexts:\n  a: [\n", 2, "", nil},
		{"unknown option", "contexts:\n  a:\n    rules:\n      - number: '1'\n        room: {name: x, colour: red}\n", 5, "contexts.a.rules[0].room.colour", nil},
		{"wrong type", "contexts:\n  a:\n    rules:\n      - number: '1'\n        room:\n          max: many\n", 6, "contexts.a.rules[0].room.max", nil},
		{"no contexts", "origins:\n  user: a\n", 1, "contexts", nil},
		{"empty context", "contexts:\n  a:\n    rules:\n      - echo: {}\n  b:\n", 5, "contexts.b", nil},
		{"unknown trunk origin, dotted name", "contexts:\n  a:\n    rules:\n      - echo: {}\norigins:\n  trunks:\n    carrier.example: a\n", 7, "origins.trunks.carrier.example", ErrUnknownTrunk},
		{"unknown trunk", "contexts:\n  a:\n    allow_trunks: true\n    rules:\n      - prefix: '0'\n        dial: {trunk: nowhere}\n", 5, "contexts.a.rules[0].dial.trunk", ErrUnknownTrunk},
		{"toll fraud", "contexts:\n  a:\n    rules:\n      - prefix: '0'\n        dial: {trunk: carrier}\n", 4, "contexts.a.rules[0].dial.trunk", ErrTollFraud},
		{"unreachable", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        echo: {}\n      - number: '8001'\n        echo: {}\n", 6, "contexts.a.rules[1]", ErrUnreachable},
		{"after catch-all", "contexts:\n  a:\n    rules:\n      - echo: {}\n      - number: '1'\n        echo: {}\n", 5, "contexts.a.rules[1]", ErrUnreachable},
		{"loop", "contexts:\n  a:\n    rules:\n      - goto: b\n  b:\n    rules:\n      - goto: a\n", 2, "contexts.a", ErrLoop},
		{"two actions", "contexts:\n  a:\n    rules:\n      - number: '1'\n        echo: {}\n        reject: {status: 404}\n", 4, "contexts.a.rules[0]", ErrBadAction},
		{"bad pattern", "contexts:\n  a:\n    rules:\n      - pattern: '(('\n        echo: {}\n", 4, "contexts.a.rules[0].pattern", nil},
		{"bad status", "contexts:\n  a:\n    rules:\n      - reject: {status: 200}\n", 4, "contexts.a.rules[0].reject.status", nil},
		{"guest with trunks", "contexts:\n  a:\n    allow_trunks: true\n    rules:\n      - echo: {}\norigins:\n  guest: a\n", 7, "origins.guest", nil},
		{"unknown origin context", "contexts:\n  a:\n    rules:\n      - echo: {}\norigins:\n  user: b\n", 6, "origins.user", ErrUnknownContext},
		{"letters in a PIN", "contexts:\n  a:\n    rules:\n      - pin: {room: {pin: '12a4'}}\n", 4, "contexts.a.rules[0].pin.room", nil},
		{"moderator PIN as the PIN", "contexts:\n  a:\n    rules:\n      - pin: {room: {pin: '12', moderator_pin: '12'}}\n", 4, "contexts.a.rules[0].pin.room.moderator_pin", nil},
		{"waiting without a moderator PIN", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        room: {pin: '1', wait_for_moderator: true}\n", 4, "contexts.a.rules[0].room", nil},
		{"a stream to http", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'http://bot'}\n", 4, "contexts.a.rules[0].stream.url", nil},
		{"an audiosocket to http", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'http://bot', framing: audiosocket}\n", 4, "contexts.a.rules[0].stream.url", nil},
		{"twilio over tcp", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'tcp://bot:9092'}\n", 4, "contexts.a.rules[0].stream.url", nil},
		{"a stream's unknown framing", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'ws://bot', framing: sip}\n", 4, "contexts.a.rules[0].stream.framing", nil},
		{"audiosocket with both tracks", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'tcp://bot:9092', framing: audiosocket, tracks: both}\n", 4, "contexts.a.rules[0].stream.tracks", nil},
		{"a stream's unknown tracks", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'ws://bot', tracks: left}\n", 4, "contexts.a.rules[0].stream.tracks", nil},
		{"twilio at 16 kHz", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'ws://bot', rate: 16000}\n", 4, "contexts.a.rules[0].stream.rate", nil},
		{"raw at 44.1 kHz", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'ws://bot', framing: raw, rate: 44100}\n", 4, "contexts.a.rules[0].stream.rate", nil},
		{"a room's stream with then", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        room: {stream: {url: 'ws://bot', then: '9'}}\n", 4, "contexts.a.rules[0].room.stream", nil},
		{"a room's stream to http", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        room: {stream: {url: 'http://bot'}}\n", 4, "contexts.a.rules[0].room.stream.url", nil},
		{"a stream's unknown option", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        stream: {url: 'ws://bot', retry: 3}\n", 5, "contexts.a.rules[0].stream.retry", nil},
		{"a room's bad rate", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        room: {rate: 11025}\n", 4, "contexts.a.rules[0].room.rate", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("plan.yaml", []byte(c.yaml), Options{Trunks: []string{"carrier"}})
			var e *config.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v", err)
			}
			if e.File != "plan.yaml" || e.Line != c.line || e.Field != c.field || (c.err != nil && !errors.Is(err, c.err)) {
				t.Fatalf("got %q (line %d field %q), want line %d field %q", err, e.Line, e.Field, c.line, c.field)
			}
		})
	}
}

// A dialplan's mistakes read like the config's: file, line, field, and
// what the field takes.
func TestParseErrorMessages(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"did you mean an action", "contexts:\n  a:\n    rules:\n      - number: '1'\n        rooom: {}\n", `plan.yaml:5: contexts.a.rules[0].rooom: unknown field (did you mean "room"?)`},
		{"did you mean an option", "contexts:\n  a:\n    rules:\n      - pin: {room: {pin: '1', moderator: '2'}}\n", `plan.yaml:4: contexts.a.rules[0].pin.room.moderator: unknown field (did you mean "moderator_pin"?)`},
		{"a number", "contexts:\n  a:\n    rules:\n      - number: '1'\n        dial: {user: bob, timeout: 30s}\n", `plan.yaml:5: contexts.a.rules[0].dial.timeout: "30s" is not a whole number`},
		{"true or false", "contexts:\n  a:\n    allow_trunks: maybe\n    rules:\n      - echo: {}\n", `plan.yaml:3: contexts.a.allow_trunks: "maybe" is not true or false`},
		{"allowed statuses", "contexts:\n  a:\n    rules:\n      - reject: {status: 200}\n", "plan.yaml:4: contexts.a.rules[0].reject.status: 200 is not a final error status (want 400 to 699)"},
		{"max_duration syntax", "contexts:\n  a:\n    max_duration: 2 hours\n    rules:\n      - echo: {}\n", `plan.yaml:3: contexts.a.max_duration: "2 hours" is not a duration (write e.g. 30s, 5m, 1h30m)`},
		{"max_duration too small", "contexts:\n  a:\n    max_duration: 10ms\n    rules:\n      - echo: {}\n", "plan.yaml:3: contexts.a.max_duration: 10ms: want at least 1s (or 0 for no limit)"},
		{"allowed rates", "contexts:\n  a:\n    rules:\n      - prefix: '8'\n        room: {rate: 11025}\n", "plan.yaml:4: contexts.a.rules[0].room.rate: 11025 is not a mixing rate (want 8000, 16000, 24000 or 48000)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("plan.yaml", []byte(c.yaml), Options{})
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

// A call gets the smallest max_duration of the contexts it passes through:
// a goto cannot escape a limit, nor lift a stricter one.
func TestMaxDurationAcrossGoto(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`
contexts:
  outer:
    max_duration: 2h
    rules:
      - prefix: "0"
        goto: trunk
      - prefix: "1"
        goto: open
      - echo: {}
  trunk:
    max_duration: 30m
    rules:
      - echo: {}
  open:
    rules:
      - echo: {}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx, number string
		want        time.Duration
	}{
		{"outer", "9", 2 * time.Hour},
		{"outer", "01", 30 * time.Minute},
		{"outer", "11", 2 * time.Hour},
		{"open", "1", 0},
		{"trunk", "1", 30 * time.Minute},
	} {
		a, err := p.Route(Call{Context: c.ctx, Number: c.number})
		if err != nil || a.MaxDuration != c.want {
			t.Errorf("%s %s: max duration %v (%v), want %v", c.ctx, c.number, a.MaxDuration, err, c.want)
		}
	}
}

func FuzzParseAndRoute(f *testing.F) {
	f.Add([]byte(plan), "8001")
	f.Add([]byte("contexts:\n  a:\n    rules:\n      - goto: a\n"), "1")
	f.Fuzz(func(t *testing.T, b []byte, number string) {
		p, err := Parse("fuzz.yaml", b, Options{Trunks: []string{"carrier"}})
		if err != nil {
			return
		}
		for name := range p.Contexts {
			_, _ = p.Route(Call{Context: name, Number: number, Caller: "x"})
		}
	})
}

// The embedded default dialplan parses and routes like the tour says.
func TestDefaultDialplan(t *testing.T) {
	p, err := Parse(configs.DialplanName, configs.Dialplan, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ origin, number, kind string }{
		{"user", "9196", Echo}, {"web", "8001", Room}, {"user", "bob", Dial}, {"user", "7000", PIN},
		{"user", "9197", Playback}, {"user", "12", Reject}, {"guest", "9196", Echo}, {"guest", "bob", Reject},
	} {
		a, err := p.Route(Call{Context: p.ContextFor(c.origin), Number: c.number})
		if err != nil || a.Kind != c.kind {
			t.Errorf("%s dials %s: %+v %v", c.origin, c.number, a, err)
		}
	}
}

// Validation walks each context once: a chain of contexts with two gotos
// each (2^n paths) validates in milliseconds, not seconds.
func TestGotoChainLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("contexts:\n")
	const n = 40
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  c%d:\n    rules:\n", i)
		if i == n-1 {
			b.WriteString("      - echo: {}\n")
			continue
		}
		fmt.Fprintf(&b, "      - prefix: \"1\"\n        goto: c%d\n      - goto: c%d\n", i+1, i+1)
	}
	// 2^40 paths: walking them all would never finish; walking each
	// context once takes about a millisecond.
	done := make(chan error, 1)
	go func() {
		_, err := Parse("chain.yaml", []byte(b.String()), Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("validating %d chained contexts did not finish", n)
	}
}

func TestRouteStream(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`contexts:
  a:
    rules:
      - prefix: '55'
        stream:
          url: wss://bot.example/media
          headers: {Authorization: Bearer x}
          parameters: {caller: $caller, ext: $1}
          then: '700'
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Route(Call{Context: "a", Number: "5512", Caller: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	s := a.Stream
	if a.Kind != Stream || s.URL != "wss://bot.example/media" || s.Framing != "twilio" || s.Headers["Authorization"] != "Bearer x" ||
		s.Parameters["caller"] != "alice" || s.Parameters["ext"] != "12" || s.Then != "700" {
		t.Fatalf("%+v", a)
	}
}

// A room's stream option routes with the room, its parameters expanded
// and its framing defaulted; rate and tracks are kept.
func TestRouteRoomStream(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`contexts:
  a:
    rules:
      - prefix: '8'
        room:
          name: conf$1
          stream: {url: 'wss://scribe.example/room', rate: 16000, framing: raw, tracks: both, parameters: {room: conf$1, by: $caller}}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Route(Call{Context: "a", Number: "812", Caller: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	s := a.Room.Stream
	if a.Kind != Room || a.Room.Name != "conf12" || s == nil || s.Framing != "raw" || s.Rate != 16000 || s.Tracks != "both" ||
		s.Parameters["room"] != "conf12" || s.Parameters["by"] != "alice" {
		t.Fatalf("%+v %+v", a, s)
	}
	if p.Contexts["a"].Rules[0].Room.Stream.Parameters["room"] != "conf$1" {
		t.Fatal("routing changed the plan's own parameters")
	}
}
