package switchboard

import (
	"strings"
	"testing"
	"time"
)

const maxDurationPlan = `
contexts:
  internal:
    max_duration: 1s
    rules:
      - number: "7002"
        room: {name: bridge}
      - number: "9196"
        echo: {}
      - number: "5"
        goto: strict
  strict:
    max_duration: 1s
    rules:
      - number: "5"
        room: {name: five}
  open:
    rules:
      - number: "5"
        goto: strict
      - number: "7002"
        room: {name: bridge}
origins: {user: internal, web: open}
`

// A context's max_duration ends the calls routed through it, whatever the
// action; a goto into a limited context takes its limit along; a context
// without one lets calls run.
func TestMaxDurationEndsCalls(t *testing.T) {
	for _, c := range []struct {
		name, dialed, origin string
		limited              bool
	}{
		{"room", "7002", "user", true},
		{"echo", "9196", "user", true},
		{"goto into a limited context", "5", "web", true},
		{"no limit", "7002", "web", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, logs := testBoard(t, maxDurationPlan)
			l := newFakeLeg("c1", "alice", c.dialed)
			t0 := time.Now()
			done := call(sb, l, c.origin)
			if !c.limited {
				select {
				case <-done:
					t.Fatal("a call without a limit ended")
				case <-time.After(1500 * time.Millisecond):
				}
				l.hangUp()
				waitEnded(t, done)
				return
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the call outlived its context's max_duration")
			}
			if el := time.Since(t0); el < time.Second {
				t.Errorf("ended after %v, before the 1 s limit", el)
			}
			if answered, _, ended := l.state(); !answered || ended != "hangup" {
				t.Errorf("answered %v, ended by %q: want voxgate's hang-up", answered, ended)
			}
			if !strings.Contains(logs.String(), "maximum call duration reached") {
				t.Errorf("no log line for the limit:\n%s", logs)
			}
		})
	}
}
