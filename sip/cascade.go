package sip

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// CascadeHeader marks an INVITE that another node of a cluster sends to
// the node hosting a room (a cascade leg); its value names the room. It is
// trusted only from the addresses WithCascadeFrom accepts: from anyone
// else it is ignored and the INVITE is classified as any other.
const CascadeHeader = "X-Voxgate-Room"

// WithCascadeFrom trusts CascadeHeader from the source addresses trusted
// accepts (the live nodes of the cluster). It is asked on the SIP stack's
// goroutine: it must answer from memory.
func WithCascadeFrom(trusted func(ip string) bool) Option {
	return func(s *Server) error {
		s.cascadeFrom = trusted
		return nil
	}
}

// Cascade is what a cascade leg carries (CascadeHeader): the room, and
// how the node the participant entered through admitted it (its PIN was
// checked there): as a moderator, and the room's moderator rules.
type Cascade struct {
	Room                               string
	Moderator                          bool
	WaitForModerator, EndWithModerator bool
	// View names the entering node's view of the room (a page there sees
	// the room through it; "" : none): 1 to 64 letters, digits, _ or -.
	View string
}

// viewToken is what a Cascade's View may be.
var viewToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// header is the value of CascadeHeader: the room, then ;moderator ;wait
// ;end when set, and ;view=<token>.
func (c Cascade) header() string {
	v := c.Room
	for _, f := range []struct {
		on   bool
		name string
	}{{c.Moderator, "moderator"}, {c.WaitForModerator, "wait"}, {c.EndWithModerator, "end"}} {
		if f.on {
			v += ";" + f.name
		}
	}
	if c.View != "" {
		v += ";view=" + c.View
	}
	return v
}

// ForwardHeader marks an INVITE that another node of a cluster sends to
// the node holding a user's registration over WebSocket (a browser's SIP
// connection ends on one node, which alone can reach it); its value names
// the user. Like CascadeHeader it is trusted only from the addresses
// WithCascadeFrom accepts.
const ForwardHeader = "X-Voxgate-User"

// cascadeOrigin tells a trusted cascade leg: Origin{Kind: "cascade", Name:
// room}, or a trusted forwarded call: Origin{Kind: "forward", Name: user}.
// bad: a node sent a room or user name that cannot be one.
func (s *Server) cascadeOrigin(req *sip.Request) (o Origin, ok, bad bool) {
	if user, ok, bad := s.forwardOf(req); ok || bad {
		return Origin{Kind: "forward", Name: user}, ok, bad
	}
	cs, ok, bad := s.cascadeOf(req)
	if !ok {
		return Origin{}, false, bad
	}
	return Origin{Kind: "cascade", Name: cs.Room}, true, false
}

// forwardOf reads ForwardHeader of req when it comes from a trusted node.
func (s *Server) forwardOf(req *sip.Request) (user string, ok, bad bool) {
	if s.cascadeFrom == nil {
		return "", false, false
	}
	h := req.GetHeader(ForwardHeader)
	if h == nil {
		return "", false, false
	}
	if !s.cascadeFrom(sourceIP(req)) {
		s.log.Debug("forward header ignored: not from a node of the cluster", "source", req.Source())
		return "", false, false
	}
	user, err := parseForward(h.Value())
	if err != nil {
		s.log.Warn("forwarded call refused", "source", req.Source(), "error", err)
		return "", false, true
	}
	return user, true, false
}

// parseForward reads ForwardHeader: a user name as a request URI's user
// carries it (1 to 128 bytes of letters, digits and ._~-).
func parseForward(v string) (string, error) {
	user := strings.TrimSpace(v)
	if len(user) == 0 || len(user) > 128 || !plainUser.MatchString(user) {
		return "", fmt.Errorf("%s: %q is not a user name", ForwardHeader, user)
	}
	return user, nil
}

// DialNodeUser calls user on the cluster node at addr (sip:host:port, its
// advertised address), which holds user's registration over WebSocket, as
// callerID: the INVITE carries ForwardHeader, and that node rings the
// devices it reaches itself.
func (s *Server) DialNodeUser(ctx context.Context, addr, user, callerID string) (*Call, error) {
	if _, err := parseForward(user); err != nil {
		return nil, err
	}
	var uri sip.Uri
	if err := sip.ParseUri(addr, &uri); err != nil || uri.Host == "" {
		return nil, fmt.Errorf("node address %q: not sip:host:port", addr)
	}
	uri.User = user
	from := sip.Uri{Scheme: "sip", User: callerID, Host: s.cfg.Domain}
	o := DialOptions{headers: []sip.Header{sip.NewHeader(ForwardHeader, user)}}
	return s.dial(ctx, uri, from, user, Origin{Kind: "forward", Name: user}, o)
}

// cascadeOf reads CascadeHeader of req when it comes from a trusted node.
func (s *Server) cascadeOf(req *sip.Request) (cs Cascade, ok, bad bool) {
	if s.cascadeFrom == nil {
		return Cascade{}, false, false
	}
	h := req.GetHeader(CascadeHeader)
	if h == nil {
		return Cascade{}, false, false
	}
	if !s.cascadeFrom(sourceIP(req)) {
		s.log.Debug("cascade header ignored: not from a node of the cluster", "source", req.Source())
		return Cascade{}, false, false
	}
	cs, err := parseCascade(h.Value())
	if err != nil {
		s.log.Warn("cascade leg refused", "source", req.Source(), "error", err)
		return Cascade{}, false, true
	}
	return cs, true, false
}

// parseCascade reads CascadeHeader: a room name of 1 to 128 bytes of
// UTF-8, no control characters, no path separators or semicolons, not "."
// or "..", then flags (;moderator ;wait ;end ;view=<token>; others, and a
// token that cannot be one, are ignored).
func parseCascade(v string) (Cascade, error) {
	room, flags, _ := strings.Cut(v, ";")
	room = strings.TrimSpace(room)
	switch {
	case room == "" || len(room) > 128:
		return Cascade{}, fmt.Errorf("%s: a room name of 1 to 128 bytes", CascadeHeader)
	case !utf8.ValidString(room) || strings.ContainsFunc(room, unicode.IsControl):
		return Cascade{}, fmt.Errorf("%s: not UTF-8 text", CascadeHeader)
	case strings.ContainsAny(room, "/\\") || room == "." || room == "..":
		return Cascade{}, fmt.Errorf("%s: %q is not a room name", CascadeHeader, room)
	}
	cs := Cascade{Room: room}
	for _, f := range strings.Split(flags, ";") {
		switch strings.TrimSpace(f) {
		case "moderator":
			cs.Moderator = true
		case "wait":
			cs.WaitForModerator = true
		case "end":
			cs.EndWithModerator = true
		default:
			if tok, ok := strings.CutPrefix(strings.TrimSpace(f), "view="); ok && viewToken.MatchString(tok) {
				cs.View = tok
			}
		}
	}
	return cs, nil
}

// plainUser is a room name that can stand as a request URI's user as is.
var plainUser = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// DialNode calls cs.Room on the cluster node at addr (sip:host:port, its
// advertised address) as callerID: a cascade leg, marked with
// CascadeHeader, that the node puts straight into the room it hosts.
func (s *Server) DialNode(ctx context.Context, addr string, cs Cascade, callerID string) (*Call, error) {
	if _, err := parseCascade(cs.Room); err != nil || strings.Contains(cs.Room, ";") {
		return nil, fmt.Errorf("room %q cannot be cascaded: %w", cs.Room, err)
	}
	if cs.View != "" && !viewToken.MatchString(cs.View) {
		return nil, fmt.Errorf("view %q: not 1 to 64 letters, digits, _ or -", cs.View)
	}
	var uri sip.Uri
	if err := sip.ParseUri(addr, &uri); err != nil || uri.Host == "" {
		return nil, fmt.Errorf("node address %q: not sip:host:port", addr)
	}
	uri.User = "room"
	if plainUser.MatchString(cs.Room) {
		uri.User = cs.Room
	}
	from := sip.Uri{Scheme: "sip", User: callerID, Host: s.cfg.Domain}
	o := DialOptions{headers: []sip.Header{sip.NewHeader(CascadeHeader, cs.header())}}
	return s.dial(ctx, uri, from, cs.Room, Origin{Kind: "cascade", Name: cs.Room}, o)
}

// Cascade is what a cascade leg from another node carries (zero for any
// other call).
func (c *Call) Cascade() Cascade { return c.cascade }
