package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/voxgate/voxgate/dialplan"
)

// routeCmd prints the dialplan rule a call would take, as the switchboard
// would route it: "file:line: context NAME: what it does" and exit 0, or
// "no route: ..." and exit 1. Flags may come before or after the number.
func routeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("route", "voxgate route [-config FILE] [-origin ORIGIN] [-from CALLER] NUMBER", stderr)
	configPath := configFlag(fs)
	origin := fs.String("origin", "user", "where the call comes from (`ORIGIN`): user, web, guest or trunk:NAME")
	from := fs.String("from", "", "the caller's user name or number (`CALLER`; rules with caller: match on it)")
	var numbers []string
	for {
		if code, done := parse(fs, args, stdout, stderr); done {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		numbers, args = append(numbers, fs.Arg(0)), fs.Args()[1:]
	}
	if len(numbers) != 1 {
		fmt.Fprintf(stderr, "voxgate route: give one number to route (got %d)\n", len(numbers))
		fs.Usage()
		return exitUsage
	}
	switch {
	case *origin == "user", *origin == "web", *origin == "guest":
	case strings.HasPrefix(*origin, "trunk:") && len(*origin) > len("trunk:"):
	default:
		fmt.Fprintf(stderr, "voxgate route: -origin %q: want user, web, guest or trunk:NAME\n", *origin)
		return exitUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	plan, err := loadDialplan(*configPath, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	line, ok := route(plan, dialplanName(*configPath, cfg), *origin, *from, numbers[0])
	fmt.Fprintln(stdout, line)
	if !ok {
		return exitFail
	}
	return exitOK
}

// route describes where a call goes: the matching rule and its action, or
// why none applies (ok false), with the switchboard's answer then.
func route(plan *dialplan.Plan, file, origin, caller, number string) (line string, ok bool) {
	ctx := plan.ContextFor(origin)
	if ctx == "" {
		return fmt.Sprintf("no route: origin %q has no context in %s (the call is refused: 403 Forbidden)", origin, file), false
	}
	a, err := plan.Route(dialplan.Call{Context: ctx, Number: number, Caller: caller})
	if errors.Is(err, dialplan.ErrNoRoute) {
		return fmt.Sprintf("no route: %v (the call is refused: 404 Not Found)", err), false
	}
	if err != nil {
		return fmt.Sprintf("no route: %v", err), false
	}
	line = fmt.Sprintf("%s:%d: context %s: %s", file, a.Line, a.Context, describeAction(a))
	if a.MaxDuration > 0 {
		line += fmt.Sprintf("; hung up after %v at most (max_duration)", a.MaxDuration)
	}
	return line, true
}

// describeAction says what an action does, without its secrets: that a room
// has a PIN, never the PIN.
func describeAction(a dialplan.Action) string {
	switch a.Kind {
	case dialplan.Room:
		return "room " + a.Room.Name + roomOptions(a.Room, nil)
	case dialplan.PIN:
		var more []string
		more = append(more, plural(a.PIN.Tries, "try", "tries"))
		if a.PIN.Prompt != "" {
			more = append(more, "prompt "+a.PIN.Prompt)
		}
		return "room " + a.PIN.Room.Name + " after a PIN prompt" + roomOptions(a.PIN.Room, more)
	case dialplan.Dial:
		d := a.Dial
		opts := []string{fmt.Sprintf("ring for %ds", d.Timeout)}
		if d.CallerID != "" {
			opts = append(opts, "caller ID "+d.CallerID)
		}
		if d.TryTimeout > 0 {
			opts = append(opts, fmt.Sprintf("each try %ds", d.TryTimeout))
		}
		if len(d.Trunks) > 1 {
			return fmt.Sprintf("dial %s through trunks %s in order (%s)", d.Number, strings.Join(d.Trunks, ", then "), strings.Join(opts, ", "))
		}
		if d.Trunk != "" {
			return fmt.Sprintf("dial %s through trunk %s (%s)", d.Number, d.Trunk, strings.Join(opts, ", "))
		}
		return fmt.Sprintf("dial user %s: all their phones and pages (%s)", d.User, strings.Join(opts, ", "))
	case dialplan.Echo:
		return "echo: the caller hears themselves"
	case dialplan.Playback:
		if a.Playback.File == "" {
			return "playback of the built-in test tone, then hang up"
		}
		return "playback of " + a.Playback.File + ", then hang up"
	case dialplan.Reject:
		return fmt.Sprintf("reject %d %s", a.Reject.Status, a.Reject.Reason)
	}
	return a.Kind
}

// roomOptions lists a room's options in parentheses ("" when none).
func roomOptions(r dialplan.RoomAction, more []string) string {
	var o []string
	if r.PIN != "" {
		o = append(o, "pin")
	}
	if r.ModeratorPIN != "" {
		o = append(o, "moderator pin")
	}
	if r.WaitForModerator {
		o = append(o, "waits for a moderator")
	}
	if r.EndWithModerator {
		o = append(o, "ends with the last moderator")
	}
	if r.Max > 0 {
		o = append(o, "max "+strconv.Itoa(r.Max))
	}
	if r.Rate > 0 {
		o = append(o, strconv.Itoa(r.Rate)+" Hz")
	}
	if r.Record {
		o = append(o, "recorded")
	}
	o = append(o, more...)
	if len(o) == 0 {
		return ""
	}
	return " (" + strings.Join(o, ", ") + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
