package sip

import (
	"fmt"
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

// Lookup returns the live bindings of user.
func (l *location) lookup(user string) []Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.liveLocked(user)
}

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
	l.aor[user] = out
	return append([]Binding(nil), out...)
}

// update applies one REGISTER's contact changes: expires 0 removes.
// A request older (same Call-ID, lower CSeq) than the stored binding is ignored
// (RFC 3261 section 10.3 step 7).
// A change that would leave more than maxContacts bindings is refused as a
// whole (ErrTooManyContacts) and stores nothing.
func (l *location) update(user string, changes []Binding, removeAll bool, maxContacts int) ([]Binding, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	before := l.liveLocked(user)
	if removeAll {
		delete(l.aor, user)
		if len(before) == 0 && l.persist != nil {
			// Not known here, maybe in a shared store (registered
			// through another node): removed there too.
			l.persist(bindingOp{b: Binding{AOR: user}, del: true})
		}
		l.written(user, before, nil)
		return nil, nil
	}
	var unknown []string // contacts removed that this server did not hold
	bs := append([]Binding(nil), l.aor[user]...)
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
		return nil, ErrTooManyContacts
	}
	l.written(user, before, bs)
	if l.persist != nil {
		for _, contact := range unknown { // maybe in a shared store: removed there too
			l.persist(bindingOp{b: Binding{AOR: user, Contact: contact}, del: true})
		}
	}
	if len(bs) == 0 {
		delete(l.aor, user)
		return nil, nil
	}
	l.aor[user] = bs
	return append([]Binding(nil), bs...), nil
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
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			s.respond(tx, req, 400, "Bad Request (malformed Expires)")
			return
		}
		defaultExp = v
	}
	var changes []Binding
	removeAll := false
	now := time.Now()
	for _, h := range req.GetHeaders("Contact") {
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
			if exp != 0 || len(req.GetHeaders("Contact")) > 1 {
				s.respond(tx, req, 400, "Bad Request (Contact: * needs Expires: 0 and no other contact)")
				return
			}
			removeAll = true
			continue
		}
		if exp > 0 && exp < s.cfg.MinExpires {
			res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
			s.send(tx, res)
			return
		}
		exp = min(exp, s.cfg.MaxExpires)
		changes = append(changes, Binding{
			AOR: user, Contact: c.Address.String(), Source: req.Source(), Transport: req.Transport(),
			CallID: req.CallID().Value(), CSeq: req.CSeq().SeqNo, Expires: now.Add(time.Duration(exp) * time.Second),
			UserAgent: headerValue(req, "User-Agent"),
		})
	}
	var bs []Binding
	if len(changes) == 0 && !removeAll {
		bs = s.location.lookup(user) // a query (RFC 3261 10.2.3)
	} else {
		var err error
		if bs, err = s.location.update(user, changes, removeAll, s.cfg.MaxContacts); err != nil {
			s.log.Warn("registration refused: too many contacts", "user", user, "source", logSource(req), "max_contacts", s.cfg.MaxContacts)
			s.respond(tx, req, 403, fmt.Sprintf("Forbidden (too many contacts: at most %d)", s.cfg.MaxContacts))
			return
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		left := int(time.Until(b.Expires).Round(time.Second).Seconds())
		res.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<%s>;expires=%d", b.Contact, max(left, 0))))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	s.send(tx, res)
	s.log.Info("registered", "user", user, "source", logSource(req), "bindings", len(bs))
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
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
