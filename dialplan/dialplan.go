// Package dialplan parses and validates the dialplan file and decides where
// each call goes: Route(call facts) -> Action. It is pure: no I/O beyond the
// bytes it is given, no goroutines.
package dialplan

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/voxgate/voxgate/internal/config"
)

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
	Stream   = "stream"
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
	// Stream is a bot that joins the room as a participant while anyone
	// is in it: it hears the room's mix (without itself) and what it says
	// is played into the room. Started when the room first has a member,
	// stopped when it empties, reconnected with backoff meanwhile.
	Stream *StreamAction `yaml:"stream"`
}

// mixRates are the rates a room can mix at: audio.MixRates, copied because
// dialplan stays pure (the standard library and yaml only, no media code).
// TestMixRatesAreAudios keeps the copy in step with the audio package.
var mixRates = []int{8000, 16000, 24000, 48000}

// rateList writes the mixing rates as "8000, 16000, 24000 or 48000".
func rateList() string {
	var b strings.Builder
	for i, r := range mixRates {
		switch {
		case i == len(mixRates)-1 && i > 0:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(r))
	}
	return b.String()
}

// validate checks a room's options; its errors name fields below the room.
func (ra *RoomAction) validate() error {
	if ra.Rate != 0 && !slices.Contains(mixRates, ra.Rate) {
		return config.Fieldf("rate", "%d is not a mixing rate (want %s)", ra.Rate, rateList())
	}
	if strings.Trim(ra.PIN+ra.ModeratorPIN, "0123456789") != "" {
		return config.FieldErr("", errors.New("PINs are digits"))
	}
	if ra.ModeratorPIN != "" && ra.ModeratorPIN == ra.PIN {
		return config.FieldErr("moderator_pin", errors.New("must differ from the pin"))
	}
	if ra.ModeratorPIN != "" && ra.PIN == "" {
		return config.FieldErr("moderator_pin", errors.New("a moderator PIN needs a pin for the others"))
	}
	if (ra.WaitForModerator || ra.EndWithModerator) && ra.ModeratorPIN == "" {
		return config.FieldErr("", errors.New("wait_for_moderator and end_with_moderator need a moderator_pin"))
	}
	if sa := ra.Stream; sa != nil {
		if sa.Then != "" || sa.OnError != "" || sa.BargeIn {
			return config.FieldErr("stream", errors.New("a room's stream takes no then, on_error or barge_in: the room goes on whatever the bot does"))
		}
		return config.Within("stream", sa.validate())
	}
	return nil
}

// DialAction rings a user or calls a number through a trunk, or through
// several trunks tried in order (failover).
type DialAction struct {
	User  string `yaml:"user"`
	Trunk string `yaml:"trunk"`
	// Trunks are tried in order until one carries the call (a trunk that
	// fails with a timeout, 408, 5xx or a transport error gives way to the
	// next; a 4xx such as 404 or 486 is the answer). Routed, Trunks always
	// lists the trunks to try and Trunk is the first of them.
	Trunks []string `yaml:"trunks"`
	// TryTimeout bounds each try through a trunk, in seconds, until its
	// final answer (0: no bound but Timeout, which spans all the tries).
	TryTimeout int    `yaml:"try_timeout"`
	Number     string `yaml:"number"` // default: the dialled number
	Strip      int    `yaml:"strip"`
	Prepend    string `yaml:"prepend"`
	CallerID   string `yaml:"caller_id"`
	Timeout    int    `yaml:"timeout"` // seconds, default 30
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

// StreamAction answers and hands the call to a bot over a media stream: the
// caller's audio goes to the bot, the bot's is played to the caller.
type StreamAction struct {
	URL     string            `yaml:"url"`     // ws:// or wss:// (audiosocket: also tcp://host:port)
	Framing string            `yaml:"framing"` // "twilio" (the default), "audiosocket" or "raw"
	Headers map[string]string `yaml:"headers"` // sent with the WebSocket handshake
	// Rate is the raw framing's sample rate: 8000 (the default), 16000,
	// 24000 or 48000; twilio and audiosocket are 8000 only.
	Rate int `yaml:"rate"`
	// Tracks: "inbound" (what the caller says, the default), "outbound"
	// (what the caller hears) or "both" (two channels; not audiosocket).
	Tracks string `yaml:"tracks"`
	// Parameters go to the bot in the start message (customParameters);
	// values may use $1.., $number and $caller.
	Parameters map[string]string `yaml:"parameters"`
	// Then is a number, routed in this rule's context, that the call goes
	// to when the bot closes the stream: a room or a PIN-protected room
	// (empty: the call is hung up).
	Then string `yaml:"then"`
	// OnError is where the call goes, as Then, when the bot cannot be
	// reached, refuses the stream, or fails during it (empty: a call not
	// answered yet is refused with 503, an answered one is hung up).
	OnError string `yaml:"on_error"`
	// BargeIn: when the caller starts talking while the bot's audio is
	// queued, the queue is dropped (as by the bot's clear).
	BargeIn bool `yaml:"barge_in"`
}

// streamFramings are the framings a stream can use (stream.Framings, copied
// because dialplan stays pure).
var streamFramings = []string{"twilio", "audiosocket", "raw"}

// streamRates are the raw framing's rates (stream.Rates, copied).
var streamRates = []int{8000, 16000, 24000, 48000}

// Check validates stream options given elsewhere than in the dialplan
// (the REST API); its errors name the field.
func (sa *StreamAction) Check() error { return sa.validate() }

func (sa *StreamAction) validate() error {
	if sa.Framing != "" && !slices.Contains(streamFramings, sa.Framing) {
		return config.Fieldf("framing", "%q: want one of %s", sa.Framing, strings.Join(streamFramings, ", "))
	}
	switch {
	case sa.Framing == "raw" && sa.Rate != 0 && !slices.Contains(streamRates, sa.Rate):
		return config.Fieldf("rate", "%d: want 8000, 16000, 24000 or 48000", sa.Rate)
	case sa.Framing != "raw" && sa.Rate != 0 && sa.Rate != 8000:
		return config.Fieldf("rate", "%d: the %s framing is 8000 Hz only (use framing: raw for wideband)", sa.Rate, cmp.Or(sa.Framing, "twilio"))
	case sa.Tracks != "" && sa.Tracks != "inbound" && sa.Tracks != "outbound" && sa.Tracks != "both":
		return config.Fieldf("tracks", "%q: want inbound, outbound or both", sa.Tracks)
	case sa.Tracks == "both" && sa.Framing == "audiosocket":
		return config.Fieldf("tracks", "both: AudioSocket is mono (use framing twilio or raw for two channels)")
	}
	ws := strings.HasPrefix(sa.URL, "ws://") || strings.HasPrefix(sa.URL, "wss://")
	switch {
	case sa.Framing == "audiosocket" && !ws && !strings.HasPrefix(sa.URL, "tcp://"):
		return config.Fieldf("url", "%q: want tcp://host:port (as Asterisk dials an AudioSocket), ws:// or wss://", sa.URL)
	case sa.Framing != "audiosocket" && !ws:
		return config.Fieldf("url", "%q: want a ws:// or wss:// URL", sa.URL)
	}
	return nil
}

// expand returns a copy of sa with the captures in its parameters
// substituted and its framing defaulted.
func (sa *StreamAction) expand(caps []string, c Call) StreamAction {
	out := *sa
	out.Parameters = make(map[string]string, len(sa.Parameters))
	for k, v := range sa.Parameters {
		out.Parameters[k] = expand(v, caps, c)
	}
	out.Framing = cmp.Or(out.Framing, "twilio")
	return out
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
	Stream   *StreamAction   `yaml:"stream"`
	Goto     string          `yaml:"goto"` // continue in another context

	re   *regexp.Regexp
	line int
}

// Context is an ordered list of rules.
type Context struct {
	AllowTrunks bool `yaml:"allow_trunks"`
	// MaxDuration ends a call routed through this context after this long
	// from its routing (ringing included); 0: no limit. A call passing
	// through several contexts (goto) gets the smallest limit among them.
	MaxDuration time.Duration `yaml:"max_duration"`
	Rules       []Rule        `yaml:"rules"`
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

// Parse decodes and validates a dialplan; name is used in errors, which are
// *config.Error naming the file, line and field. A mistake inside a rule is
// reported on the rule's first line.
func Parse(name string, data []byte, o Options) (*Plan, error) {
	var p Plan
	root, err := config.Decode(name, data, &p)
	if err != nil {
		return nil, err
	}
	if err := p.validate(root, o); err != nil {
		return nil, config.Locate(name, root, err)
	}
	return &p, nil
}

// validate checks a decoded plan and notes each rule's line.
func (p *Plan) validate(root *yaml.Node, o Options) error {
	if len(p.Contexts) == 0 {
		return config.FieldErr("contexts", errors.New("no contexts"))
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
			return config.FieldErr("contexts."+cn, errors.New("empty context"))
		}
		if c.MaxDuration < 0 || (c.MaxDuration > 0 && c.MaxDuration < time.Second) {
			return config.Fieldf("contexts."+cn+".max_duration", "%v: want at least 1s (or 0 for no limit)", c.MaxDuration)
		}
		for i := range c.Rules {
			r := &c.Rules[i]
			field := fmt.Sprintf("contexts.%s.rules[%d]", cn, i)
			r.line = config.Line(root, field)
			if err := r.validate(p, c, trunks); err != nil {
				e := config.Within(field, err).(*config.Error)
				e.Line = r.line // a rule's mistakes are shown on its first line
				return e
			}
		}
		if i, err := unreachable(c); err != nil {
			return &config.Error{Line: c.Rules[i].line, Field: fmt.Sprintf("contexts.%s.rules[%d]", cn, i), Err: err}
		}
	}
	state := make(map[string]visit, len(names)) // one walk over every context and goto
	for _, cn := range names {
		if err := p.loop(cn, state); err != nil {
			return config.FieldErr("contexts."+cn, err)
		}
	}
	for field, ctx := range map[string]string{"origins.user": p.Origins.User, "origins.web": p.Origins.Web, "origins.guest": p.Origins.Guest} {
		if ctx != "" && p.Contexts[ctx] == nil {
			return config.Fieldf(field, "%w %q", ErrUnknownContext, ctx)
		}
	}
	if g := p.Contexts[p.Origins.Guest]; g != nil && g.AllowTrunks {
		return config.FieldErr("origins.guest", errors.New("guests must never reach trunks: their context may not allow_trunks"))
	}
	for t, ctx := range p.Origins.Trunks {
		if !trunks[t] {
			return config.Fieldf("origins.trunks."+t, "%w %q", ErrUnknownTrunk, t)
		}
		if p.Contexts[ctx] == nil {
			return config.Fieldf("origins.trunks."+t, "%w %q", ErrUnknownContext, ctx)
		}
	}
	return nil
}

// validate checks one rule of context c; its errors name fields below the rule.
func (r *Rule) validate(p *Plan, c *Context, trunks map[string]bool) error {
	matchers := 0
	for _, m := range []string{r.Number, r.Prefix, r.Pattern} {
		if m != "" {
			matchers++
		}
	}
	if matchers > 1 {
		return config.FieldErr("", errors.New("use one of number, prefix and pattern"))
	}
	if r.Pattern != "" {
		re, err := regexp.Compile("^(?:" + r.Pattern + ")$")
		if err != nil {
			return config.FieldErr("pattern", err)
		}
		r.re = re
	}
	actions := 0
	for _, set := range []bool{r.Room != nil, r.Dial != nil, r.PIN != nil, r.Echo != nil, r.Playback != nil, r.Reject != nil, r.Stream != nil, r.Goto != ""} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		return config.FieldErr("", ErrBadAction)
	}
	switch {
	case r.Dial != nil:
		d := r.Dial
		if err := d.validateTrunks(c, trunks); err != nil {
			return err
		}
		if d.Strip < 0 || d.Timeout < 0 || d.TryTimeout < 0 {
			return config.FieldErr("dial", errors.New("strip, timeout and try_timeout must not be negative"))
		}
	case r.PIN != nil:
		if r.PIN.Room.PIN == "" {
			return config.FieldErr("pin.room.pin", errors.New("a PIN rule needs the room's pin"))
		}
		return config.Within("pin.room", r.PIN.Room.validate())
	case r.Room != nil:
		return config.Within("room", r.Room.validate())
	case r.Stream != nil:
		return config.Within("stream", r.Stream.validate())
	case r.Reject != nil:
		if r.Reject.Status < 400 || r.Reject.Status > 699 {
			return config.Fieldf("reject.status", "%d is not a final error status (want 400 to 699)", r.Reject.Status)
		}
	case r.Goto != "":
		if p.Contexts[r.Goto] == nil {
			return config.Fieldf("goto", "%w %q", ErrUnknownContext, r.Goto)
		}
	}
	return nil
}

// unreachable finds a rule that an earlier rule shadows entirely: a
// catch-all before it, the same exact number, or a prefix of its number or
// prefix (for the same caller, or an earlier rule for any caller). It
// returns the shadowed rule's index.
func unreachable(c *Context) (int, error) {
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
				return i, fmt.Errorf("%w (rule %d)", ErrUnreachable, j)
			}
		}
	}
	return 0, nil
}

// visit is where a depth-first walk of the gotos stands with a context.
type visit uint8

const (
	unvisited visit = iota
	onPath          // being walked: reaching it again is a loop
	checked         // walked already, no loop below it
)

// loop reports a goto loop reachable from ctx. Each context is walked once
// (state remembers the checked ones), so validation is linear in the plan.
func (p *Plan) loop(ctx string, state map[string]visit) error {
	switch state[ctx] {
	case onPath:
		return fmt.Errorf("%w through %q", ErrLoop, ctx)
	case checked:
		return nil
	}
	state[ctx] = onPath
	for _, r := range p.Contexts[ctx].Rules {
		if r.Goto != "" {
			if err := p.loop(r.Goto, state); err != nil {
				return err
			}
		}
	}
	state[ctx] = checked
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
	Kind    string
	Context string // the context of the rule that matched
	Line    int    // the rule's line in the file
	// MaxDuration: end the call this long after it was routed (0: never),
	// the smallest max_duration of the contexts it went through.
	MaxDuration time.Duration
	Room        RoomAction
	Dial        DialAction
	PIN         PINAction
	Playback    PlaybackAction
	Reject      RejectAction
	Stream      StreamAction
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
	var limit time.Duration // the smallest max_duration on the way
	for hops := 0; hops < 16; hops++ {
		ctx := p.Contexts[c.Context]
		if ctx == nil {
			return Action{}, fmt.Errorf("%w %q", ErrUnknownContext, c.Context)
		}
		if d := ctx.MaxDuration; d > 0 && (limit == 0 || d < limit) {
			limit = d
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
			a := r.action(c, caps)
			a.MaxDuration = limit
			return a, nil
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
		if ra.Stream != nil {
			sa := ra.Stream.expand(caps, c)
			ra.Stream = &sa
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
		d.Trunks, d.Trunk = d.TrunkOrder(), ""
		if len(d.Trunks) > 0 {
			d.Trunk = d.Trunks[0]
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
	case r.Stream != nil:
		a.Kind, a.Stream = Stream, r.Stream.expand(caps, c)
	}
	return a
}
