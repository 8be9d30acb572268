package sip

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Binding is one registered contact of an address-of-record.
type Binding struct {
	AOR       string // user name
	Contact   string // the Contact URI the phone registered
	Source    string // host:port the REGISTER came from (reached there, for NAT)
	Transport string
	CallID    string
	CSeq      uint32
	Expires   time.Time
	UserAgent string
}

// location is the registrar's store: bindings per address-of-record.
type location struct {
	mu  sync.Mutex
	aor map[string][]Binding
	now func() time.Time
	// persist, when set, is handed every change (with mu held; it must
	// not block).
	persist func(bindingOp)
}

// setPersist sets where changes are written through.
func (l *location) setPersist(f func(bindingOp)) {
	l.mu.Lock()
	l.persist = f
	l.mu.Unlock()
}

// load adds bindings read from the store (those still alive).
func (l *location) load(bs []Binding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, b := range bs {
		if !b.Expires.After(now) || isWS(b.Transport) { // a WebSocket does not outlive a restart
			continue
		}
		cur := l.aor[b.AOR]
		replaced := false
		for i := range cur {
			if cur[i].Contact == b.Contact {
				cur[i], replaced = b, true
			}
		}
		if !replaced {
			cur = append(cur, b)
		}
		l.aor[b.AOR] = cur
	}
}

// written hands the difference between a user's bindings before and after
// a change to persist.
func (l *location) written(user string, before, after []Binding) {
	if l.persist == nil {
		return
	}
	if len(after) == 0 && len(before) > 0 {
		l.persist(bindingOp{b: Binding{AOR: user}, del: true})
		return
	}
	for _, b := range after {
		if !slices.Contains(before, b) {
			l.persist(bindingOp{b: b})
		}
	}
	for _, b := range before {
		if !slices.ContainsFunc(after, func(a Binding) bool { return a.Contact == b.Contact }) {
			l.persist(bindingOp{b: Binding{AOR: user, Contact: b.Contact}, del: true})
		}
	}
}

func newLocation() *location {
	return &location{aor: map[string][]Binding{}, now: time.Now}
}

// lookup returns the live bindings of user.
func (l *location) lookup(user string) []Binding {
	return l.lookupInto(user, nil)
}

// lookupInto appends the live bindings of user to out.
func (l *location) lookupInto(user string, out []Binding) []Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(out, l.liveLocked(user)...)
}

// liveLocked drops user's expired bindings and returns the others (the
// stored slice: not to be kept past the lock).
func (l *location) liveLocked(user string) []Binding {
	now := l.now()
	bs := l.aor[user]
	out := bs[:0]
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		delete(l.aor, user)
		return nil
	}
	clear(bs[len(out):]) // no strings held past the end
	l.aor[user] = out
	return out
}

// update applies one REGISTER's contact changes: expires 0 removes.
// A request older (same Call-ID, lower CSeq) than the stored binding is ignored
// (RFC 3261 section 10.3 step 7).
// A change that would leave more than maxContacts bindings is refused as a
// whole (ErrTooManyContacts) and stores nothing.
// It appends user's bindings after the change to out.
func (l *location) update(user string, changes []Binding, removeAll bool, maxContacts int, out []Binding) ([]Binding, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	live := l.liveLocked(user)
	if removeAll {
		delete(l.aor, user)
		if len(live) == 0 && l.persist != nil {
			// Not known here, maybe in a shared store (registered
			// through another node): removed there too.
			l.persist(bindingOp{b: Binding{AOR: user}, del: true})
		}
		l.written(user, live, nil)
		return out, nil
	}
	// The change is made on a copy (on the stack for a few contacts): the
	// bindings before it are written through to the store by difference,
	// and a refused change leaves them as they were.
	var beforeBuf, afterBuf [4]Binding
	before := append(beforeBuf[:0], live...)
	bs := append(afterBuf[:0], live...)
	var unknown []string // contacts removed that this server did not hold
	for _, c := range changes {
		i := -1
		for j := range bs {
			if bs[j].Contact == c.Contact {
				i = j
				break
			}
		}
		if i >= 0 && bs[i].CallID == c.CallID && c.CSeq < bs[i].CSeq {
			continue
		}
		remove := !c.Expires.After(l.now())
		if remove && i < 0 {
			unknown = append(unknown, c.Contact)
		}
		switch {
		case i >= 0 && remove:
			bs = append(bs[:i], bs[i+1:]...)
		case i >= 0:
			bs[i] = c
		case !remove:
			bs = append(bs, c)
		}
	}
	if maxContacts > 0 && len(bs) > maxContacts {
		return out, ErrTooManyContacts
	}
	l.written(user, before, bs)
	if l.persist != nil {
		for _, contact := range unknown { // maybe in a shared store: removed there too
			l.persist(bindingOp{b: Binding{AOR: user, Contact: contact}, del: true})
		}
	}
	if len(bs) == 0 {
		delete(l.aor, user)
		return out, nil
	}
	stored := append(live[:0], bs...) // into the stored array when it holds them
	if len(stored) < len(live) {
		clear(live[len(stored):]) // no strings held past the end
	}
	l.aor[user] = stored
	return append(out, bs...), nil
}

// count returns the number of live bindings (for stats and tests).
func (l *location) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for u := range l.aor {
		n += len(l.liveLocked(u))
	}
	return n
}

// handleRegister is the registrar (RFC 3261 section 10.3).
func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	to := req.To()
	user := to.Address.User
	if _, ok := s.users.Lookup(user); !ok {
		// Do not tell an attacker which names exist: challenge as usual and
		// fail the credentials.
		s.log.Debug("REGISTER for unknown user", "user", user, "source", logSource(req))
	}
	authUser, ok := s.authenticate(req, tx, "Authorization", 401)
	if !ok {
		return
	}
	if authUser != user {
		s.respond(tx, req, 403, "Forbidden (credentials do not match the address-of-record)")
		return
	}
	defaultExp := s.cfg.DefaultExpires
	if h := headerNamed(req, "Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			s.respond(tx, req, 400, "Bad Request (malformed Expires)")
			return
		}
		defaultExp = v
	}
	var changeBuf [4]Binding // a phone registers one contact, rarely more
	changes := changeBuf[:0]
	removeAll := false
	now := time.Now()
	contacts := countHeaders(req, "Contact")
	var source, transport, callID, userAgent string
	if contacts > 0 {
		source, transport, callID = req.Source(), req.Transport(), req.CallID().Value()
		userAgent = headerValueOf(req, "User-Agent")
	}
	for _, h := range req.Headers() {
		if !asciiEqualFold(h.Name(), "Contact") {
			continue
		}
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			s.respond(tx, req, 400, "Bad Request (malformed Contact)")
			return
		}
		exp := defaultExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.respond(tx, req, 400, "Bad Request (malformed expires parameter)")
				return
			}
			exp = n
		}
		if c.Address.Wildcard {
			if exp != 0 || contacts > 1 {
				s.respond(tx, req, 400, "Bad Request (Contact: * needs Expires: 0 and no other contact)")
				return
			}
			removeAll = true
			continue
		}
		if exp > 0 && exp < s.cfg.MinExpires {
			res := newResponse(req, 423, "Interval Too Brief")
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
			s.send(tx, res)
			return
		}
		exp = min(exp, s.cfg.MaxExpires)
		changes = append(changes, Binding{
			AOR: user, Contact: uriString(&c.Address), Source: source, Transport: transport,
			CallID: callID, CSeq: req.CSeq().SeqNo, Expires: now.Add(time.Duration(exp) * time.Second),
			UserAgent: userAgent,
		})
	}
	var bsBuf [4]Binding
	bs := bsBuf[:0]
	if len(changes) == 0 && !removeAll {
		bs = s.location.lookupInto(user, bs) // a query (RFC 3261 10.2.3)
	} else {
		var err error
		if bs, err = s.location.update(user, changes, removeAll, s.cfg.MaxContacts, bs); err != nil {
			s.log.Warn("registration refused: too many contacts", "user", user, "source", logSource(req), "max_contacts", s.cfg.MaxContacts)
			s.respond(tx, req, 403, fmt.Sprintf("Forbidden (too many contacts: at most %d)", s.cfg.MaxContacts))
			return
		}
	}
	res := newResponse(req, 200, "OK")
	for _, b := range bs {
		left := int(b.Expires.Sub(now).Round(time.Second).Seconds())
		res.AppendHeader(sip.NewHeader("Contact", contactValue(b.Contact, max(left, 0))))
	}
	res.AppendHeader(s.dates.at(now))
	s.send(tx, res)
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "registered",
		slog.String("user", user), slog.String("source", logSource(req)), slog.Int("bindings", len(bs)))
}

// all returns every live binding.
func (l *location) all() []Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Binding
	for u := range l.aor {
		out = append(out, l.liveLocked(u)...)
	}
	return out
}
