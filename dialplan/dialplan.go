// Package dialplan parses and validates the dialplan file and decides where
// each call goes: Route(call facts) -> Action. It is pure: no I/O beyond the
// bytes it is given, no goroutines.
package dialplan

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a dialplan mistake with the file, line and field.
type Error struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Field, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors of validation and routing.
var (
	ErrUnknownTrunk   = errors.New("unknown trunk")
	ErrUnreachable    = errors.New("rule can never match: an earlier rule takes every number it would")
	ErrLoop           = errors.New("goto loop")
	ErrUnknownContext = errors.New("unknown context")
	ErrTollFraud      = errors.New("this context may not reach trunks (set allow_trunks: true on it)")
	ErrBadAction      = errors.New("a rule needs exactly one action")
	ErrNoRoute        = errors.New("no rule matches")
)

// Kinds of action.
const (
	Room     = "room"
	Dial     = "dial"
	PIN      = "pin"
	Echo     = "echo"
	Playback = "playback"
	Reject   = "reject"
)

// RoomAction joins a conference room.
type RoomAction struct {
	Name         string `yaml:"name"` // may use $1.. and $number
	PIN          string `yaml:"pin"`
	ModeratorPIN string `yaml:"moderator_pin"`
	Max          int    `yaml:"max"`
	Record       bool   `yaml:"record"`
	Rate         int    `yaml:"rate"`
	// WaitForModerator: callers who keyed the PIN wait (a soft tone, nobody
	// heard) until someone who keyed the moderator PIN is in the room.
	WaitForModerator bool `yaml:"wait_for_moderator"`
	// EndWithModerator: when the last moderator leaves, everyone is hung up.
	EndWithModerator bool `yaml:"end_with_moderator"`
}

// mixRates are the rates a room can mix at: audio.MixRates, copied because
// dialplan stays pure (the standard library and yaml only, no media code).
// TestMixRatesAreAudios keeps the copy in step with the audio package.
var mixRates = []int{8000, 16000, 24000, 48000}

// validate checks a room's options; field names the room in errors.
func (ra *RoomAction) validate(field string) (string, error) {
	if ra.Rate != 0 && !slices.Contains(mixRates, ra.Rate) {
		return field + ".rate", fmt.Errorf("%d is not a mixing rate (want one of %v)", ra.Rate, mixRates)
	}
	if strings.Trim(ra.PIN+ra.ModeratorPIN, "0123456789") != "" {
		return field, errors.New("PINs are digits")
	}
	if ra.ModeratorPIN != "" && ra.ModeratorPIN == ra.PIN {
		return field + ".moderator_pin", errors.New("must differ from the pin")
	}
	if ra.ModeratorPIN != "" && ra.PIN == "" {
		return field + ".moderator_pin", errors.New("a moderator PIN needs a pin for the others")
	}
	if (ra.WaitForModerator || ra.EndWithModerator) && ra.ModeratorPIN == "" {
		return field, errors.New("wait_for_moderator and end_with_moderator need a moderator_pin")
	}
	return "", nil
}

// DialAction rings a user or calls a number through a trunk.
type DialAction struct {
	User     string `yaml:"user"`
	Trunk    string `yaml:"trunk"`
	Number   string `yaml:"number"` // default: the dialled number
	Strip    int    `yaml:"strip"`
	Prepend  string `yaml:"prepend"`
	CallerID string `yaml:"caller_id"`
	Timeout  int    `yaml:"timeout"` // seconds, default 30
}

// PINAction plays a prompt, collects a PIN (three tries) and joins a room.
type PINAction struct {
	Prompt string     `yaml:"prompt"` // WAV file
	Room   RoomAction `yaml:"room"`
	Tries  int        `yaml:"tries"`
}

// PlaybackAction plays a WAV and hangs up.
type PlaybackAction struct {
	File string `yaml:"file"`
}

// RejectAction refuses the call with a SIP status.
type RejectAction struct {
	Status int    `yaml:"status"`
	Reason string `yaml:"reason"`
}

// Rule is one line of a context.
type Rule struct {
	Number  string `yaml:"number"`  // exact
	Prefix  string `yaml:"prefix"`  // $1 is the rest
	Pattern string `yaml:"pattern"` // a regular expression over the whole number; $1.. its groups
	Caller  string `yaml:"caller"`  // optional: only this caller

	Room     *RoomAction     `yaml:"room"`
	Dial     *DialAction     `yaml:"dial"`
	PIN      *PINAction      `yaml:"pin"`
	Echo     *struct{}       `yaml:"echo"`
	Playback *PlaybackAction `yaml:"playback"`
	Reject   *RejectAction   `yaml:"reject"`
	Goto     string          `yaml:"goto"` // continue in another context

	re   *regexp.Regexp
	line int
}

// Context is an ordered list of rules.
type Context struct {
	AllowTrunks bool   `yaml:"allow_trunks"`
	Rules       []Rule `yaml:"rules"`
}

// Origins say which context a call starts in.
type Origins struct {
	User   string            `yaml:"user"`   // a registered SIP user
	Web    string            `yaml:"web"`    // a signed-in browser user
	Guest  string            `yaml:"guest"`  // an unauthenticated SIP caller
	Trunks map[string]string `yaml:"trunks"` // a trunk's inbound calls, by trunk name
}

// Plan is a validated dialplan.
type Plan struct {
	Contexts map[string]*Context `yaml:"contexts"`
	Origins  Origins             `yaml:"origins"`
}

// Options give Parse what it checks against.
type Options struct {
	Trunks []string // the configured trunk names
}

var capture = regexp.MustCompile(`\$(\d+|number|caller)`)

// Parse decodes and validates a dialplan; name is used in errors.
func Parse(name string, data []byte, o Options) (*Plan, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErr(name, err)
	}
	var p Plan
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, yamlErr(name, err)
	}
	fail := func(field string, line int, err error) error {
		return &Error{File: name, Line: line, Field: field, Err: err}
	}
	if len(p.Contexts) == 0 {
		return nil, fail("contexts", 1, errors.New("no contexts"))
	}
	trunks := map[string]bool{}
	for _, t := range o.Trunks {
		trunks[t] = true
	}
	names := make([]string, 0, len(p.Contexts))
	for n := range p.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, cn := range names {
		c := p.Contexts[cn]
		if c == nil {
			return nil, fail("contexts."+cn, lineOf(&root, "contexts", cn), errors.New("empty context"))
		}
		for i := range c.Rules {
			r := &c.Rules[i]
			field := fmt.Sprintf("contexts.%s.rules[%d]", cn, i)
			r.line = ruleLine(&root, cn, i)
			matchers := 0
			for _, m := range []string{r.Number, r.Prefix, r.Pattern} {
				if m != "" {
					matchers++
				}
			}
			if matchers > 1 {
				return nil, fail(field, r.line, errors.New("use one of number, prefix and pattern"))
			}
			if r.Pattern != "" {
				re, err := regexp.Compile("^(?:" + r.Pattern + ")$")
				if err != nil {
					return nil, fail(field+".pattern", r.line, err)
				}
				r.re = re
			}
			actions := 0
			for _, set := range []bool{r.Room != nil, r.Dial != nil, r.PIN != nil, r.Echo != nil, r.Playback != nil, r.Reject != nil, r.Goto != ""} {
				if set {
					actions++
				}
			}
			if actions != 1 {
				return nil, fail(field, r.line, ErrBadAction)
			}
			switch {
			case r.Dial != nil:
				d := r.Dial
				if (d.User == "") == (d.Trunk == "") {
					return nil, fail(field+".dial", r.line, errors.New("give user or trunk"))
				}
				if d.Trunk != "" && !trunks[d.Trunk] {
					return nil, fail(field+".dial.trunk", r.line, fmt.Errorf("%w %q", ErrUnknownTrunk, d.Trunk))
				}
				if d.Trunk != "" && !c.AllowTrunks {
					return nil, fail(field+".dial.trunk", r.line, ErrTollFraud)
				}
				if d.Strip < 0 || d.Timeout < 0 {
					return nil, fail(field+".dial", r.line, errors.New("strip and timeout must not be negative"))
				}
			case r.PIN != nil:
				if r.PIN.Room.PIN == "" {
					return nil, fail(field+".pin.room.pin", r.line, errors.New("a PIN rule needs the room's pin"))
				}
				if f, err := r.PIN.Room.validate(field + ".pin.room"); err != nil {
					return nil, fail(f, r.line, err)
				}
			case r.Room != nil:
				if f, err := r.Room.validate(field + ".room"); err != nil {
					return nil, fail(f, r.line, err)
				}
			case r.Reject != nil:
				if r.Reject.Status < 400 || r.Reject.Status > 699 {
					return nil, fail(field+".reject.status", r.line, fmt.Errorf("%d is not a final error status", r.Reject.Status))
				}
			case r.Goto != "":
				if p.Contexts[r.Goto] == nil {
					return nil, fail(field+".goto", r.line, fmt.Errorf("%w %q", ErrUnknownContext, r.Goto))
				}
			}
		}
		if err := unreachable(c); err != nil {
			var e *indexErr
			errors.As(err, &e)
			return nil, fail(fmt.Sprintf("contexts.%s.rules[%d]", cn, e.i), c.Rules[e.i].line, e.err)
		}
	}
	for _, cn := range names {
		if err := p.loop(cn, map[string]bool{}); err != nil {
			return nil, fail("contexts."+cn, lineOf(&root, "contexts", cn), err)
		}
	}
	for field, ctx := range map[string]string{"origins.user": p.Origins.User, "origins.web": p.Origins.Web, "origins.guest": p.Origins.Guest} {
		if ctx != "" && p.Contexts[ctx] == nil {
			return nil, fail(field, lineOf(&root, strings.Split(field, ".")...), fmt.Errorf("%w %q", ErrUnknownContext, ctx))
		}
	}
	if g := p.Contexts[p.Origins.Guest]; g != nil && g.AllowTrunks {
		return nil, fail("origins.guest", lineOf(&root, "origins", "guest"), errors.New("guests must never reach trunks: their context may not allow_trunks"))
	}
	for t, ctx := range p.Origins.Trunks {
		if !trunks[t] {
			return nil, fail("origins.trunks."+t, lineOf(&root, "origins", "trunks", t), fmt.Errorf("%w %q", ErrUnknownTrunk, t))
		}
		if p.Contexts[ctx] == nil {
			return nil, fail("origins.trunks."+t, lineOf(&root, "origins", "trunks", t), fmt.Errorf("%w %q", ErrUnknownContext, ctx))
		}
	}
	return &p, nil
}

type indexErr struct {
	i   int
	err error
}

func (e *indexErr) Error() string { return e.err.Error() }

// unreachable finds a rule that an earlier rule shadows entirely: a
// catch-all before it, the same exact number, or a prefix of its number or
// prefix (for the same caller, or an earlier rule for any caller).
func unreachable(c *Context) error {
	for i := range c.Rules {
		for j := 0; j < i; j++ {
			a, b := &c.Rules[j], &c.Rules[i]
			if a.Caller != "" && a.Caller != b.Caller {
				continue
			}
			catchAll := a.Number == "" && a.Prefix == "" && a.Pattern == ""
			shadow := catchAll ||
				(a.Number != "" && a.Number == b.Number) ||
				(a.Prefix != "" && b.Number != "" && strings.HasPrefix(b.Number, a.Prefix) && len(b.Number) > len(a.Prefix)) ||
				(a.Prefix != "" && b.Prefix != "" && strings.HasPrefix(b.Prefix, a.Prefix))
			if shadow {
				return &indexErr{i, fmt.Errorf("%w (rule %d)", ErrUnreachable, j)}
			}
		}
	}
	return nil
}

func (p *Plan) loop(ctx string, seen map[string]bool) error {
	if seen[ctx] {
		return fmt.Errorf("%w through %q", ErrLoop, ctx)
	}
	seen[ctx] = true
	defer delete(seen, ctx)
	for _, r := range p.Contexts[ctx].Rules {
		if r.Goto != "" {
			if err := p.loop(r.Goto, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// Call is what routing looks at.
type Call struct {
	Context string // where the call starts (see Plan.ContextFor)
	Number  string // the dialled number
	Caller  string // the caller's user name or number
}

// Action is the outcome of Route, with captures substituted.
type Action struct {
	Kind     string
	Context  string // the context of the rule that matched
	Line     int    // the rule's line in the file
	Room     RoomAction
	Dial     DialAction
	PIN      PINAction
	Playback PlaybackAction
	Reject   RejectAction
}

// ContextFor returns the context for an origin: "user", "web", "guest" or
// "trunk:<name>"; "" when the plan has none (the call is refused).
func (p *Plan) ContextFor(origin string) string {
	switch {
	case origin == "user":
		return p.Origins.User
	case origin == "web":
		return p.Origins.Web
	case origin == "guest":
		return p.Origins.Guest
	case strings.HasPrefix(origin, "trunk:"):
		return p.Origins.Trunks[strings.TrimPrefix(origin, "trunk:")]
	}
	return ""
}

// Route decides what to do with a call.
func (p *Plan) Route(c Call) (Action, error) {
	for hops := 0; hops < 16; hops++ {
		ctx := p.Contexts[c.Context]
		if ctx == nil {
			return Action{}, fmt.Errorf("%w %q", ErrUnknownContext, c.Context)
		}
		matched := false
		for i := range ctx.Rules {
			r := &ctx.Rules[i]
			caps, ok := r.match(c)
			if !ok {
				continue
			}
			if r.Goto != "" {
				c.Context = r.Goto
				matched = true
				break
			}
			return r.action(c, caps), nil
		}
		if !matched {
			return Action{}, fmt.Errorf("%w %q in context %q", ErrNoRoute, c.Number, c.Context)
		}
	}
	return Action{}, ErrLoop
}

func (r *Rule) match(c Call) ([]string, bool) {
	if r.Caller != "" && r.Caller != c.Caller {
		return nil, false
	}
	switch {
	case r.Number != "":
		return []string{c.Number}, c.Number == r.Number
	case r.Prefix != "":
		if strings.HasPrefix(c.Number, r.Prefix) && len(c.Number) > len(r.Prefix) {
			return []string{c.Number, strings.TrimPrefix(c.Number, r.Prefix)}, true
		}
		return nil, false
	case r.re != nil:
		m := r.re.FindStringSubmatch(c.Number)
		return m, m != nil
	}
	return []string{c.Number}, true // a catch-all
}

func expand(s string, caps []string, c Call) string {
	return capture.ReplaceAllStringFunc(s, func(m string) string {
		switch m {
		case "$number":
			return c.Number
		case "$caller":
			return c.Caller
		}
		n, _ := strconv.Atoi(m[1:])
		if n < len(caps) {
			return caps[n]
		}
		return ""
	})
}

func (r *Rule) action(c Call, caps []string) Action {
	a := Action{Context: c.Context, Line: r.line}
	room := func(ra RoomAction) RoomAction {
		ra.Name = expand(ra.Name, caps, c)
		if ra.Name == "" {
			ra.Name = c.Number
			if len(caps) > 1 {
				ra.Name = caps[1]
			}
		}
		return ra
	}
	switch {
	case r.Room != nil:
		a.Kind, a.Room = Room, room(*r.Room)
	case r.Dial != nil:
		d := *r.Dial
		d.User = expand(d.User, caps, c)
		num := expand(d.Number, caps, c)
		if num == "" {
			num = c.Number
		}
		if d.Strip > 0 && d.Strip <= len(num) {
			num = num[d.Strip:]
		}
		d.Number = d.Prepend + num
		d.CallerID = expand(d.CallerID, caps, c)
		if d.Timeout == 0 {
			d.Timeout = 30
		}
		a.Kind, a.Dial = Dial, d
	case r.PIN != nil:
		pa := *r.PIN
		pa.Room = room(pa.Room)
		if pa.Tries == 0 {
			pa.Tries = 3
		}
		a.Kind, a.PIN = PIN, pa
	case r.Echo != nil:
		a.Kind = Echo
	case r.Playback != nil:
		a.Kind, a.Playback = Playback, *r.Playback
	case r.Reject != nil:
		a.Kind, a.Reject = Reject, *r.Reject
	}
	return a
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

func yamlErr(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Field: "yaml", Err: errors.New(m[2])}
	}
	return &Error{File: name, Line: 1, Field: "yaml", Err: errors.New(msg)}
}

// lineOf finds the line of a mapping path.
func lineOf(root *yaml.Node, path ...string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		found := false
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func ruleLine(root *yaml.Node, ctx string, i int) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range []string{"contexts", ctx, "rules"} {
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == key {
					next = n.Content[j+1]
				}
			}
		}
		if next == nil {
			return 1
		}
		n = next
	}
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i].Line
	}
	return n.Line
}
