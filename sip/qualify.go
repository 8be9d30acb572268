package sip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
)

// Qualify: voxgate sends OPTIONS to each trunk (trunks[].qualify, default
// 60 s) and, when sip.qualify_contacts is set, to every registered contact,
// and keeps whether each answers. sip.qualify_misses probes in a row that
// get no answer (default 2) mark a trunk down or a contact unreachable; one
// answer brings it back. Any final response proves the peer is alive (a 404
// or 405 to OPTIONS is still an answer) except 503, which a peer sends
// when it is overloaded or draining and wants no traffic.

// DefaultTrunkQualify is how often a trunk is probed when its config does
// not say.
const DefaultTrunkQualify = 60 * time.Second

// One probe waits for its answer as long as the interval, but at least
// minProbeWait (a loaded host or a far carrier takes some hundreds of
// milliseconds) and at most maxProbeWait.
const (
	minProbeWait = time.Second
	maxProbeWait = 5 * time.Second
)

// probeWait is how long a probe sent every interval waits.
func probeWait(every time.Duration) time.Duration {
	return min(max(every, minProbeWait), maxProbeWait)
}

// probeConcurrency bounds the contact probes in flight at once.
const probeConcurrency = 32

// Health is what qualify knows of a trunk or a contact.
type Health struct {
	// Qualified: probes are sent (false: qualify is off for it, or no probe
	// has finished yet; Reachable is then true, as nothing says otherwise).
	Qualified bool
	// Reachable: the last probes were answered (or too few were missed).
	Reachable bool
	// RTT is the round trip of the last answered OPTIONS.
	RTT time.Duration
	// LastError is why the last probe failed ("" after an answer).
	LastError string
	// Since is when Reachable last changed (or the first probe's time).
	Since time.Time
	// misses counts probes failed in a row.
	misses int
}

// ErrNoAnswer: an OPTIONS probe got no final response in time.
var ErrNoAnswer = errors.New("no answer to OPTIONS")

// validateQualify checks and defaults the qualify settings.
func (c *Config) validateQualify() error {
	if c.QualifyContacts < 0 {
		return config.Fieldf("qualify_contacts", "must not be negative (0 turns it off)")
	}
	if c.QualifyContacts > 0 && c.QualifyContacts < 100*time.Millisecond {
		return config.Fieldf("qualify_contacts", "%v is too short (at least 100ms)", c.QualifyContacts)
	}
	if c.QualifyMisses == 0 {
		c.QualifyMisses = 2
	}
	if c.QualifyMisses < 1 {
		return config.Fieldf("qualify_misses", "must be at least 1")
	}
	for i := range c.Trunks {
		t := &c.Trunks[i]
		if t.Qualify == nil {
			d := DefaultTrunkQualify
			t.Qualify = &d
		}
		if *t.Qualify < 0 || (*t.Qualify > 0 && *t.Qualify < 100*time.Millisecond) {
			return config.Fieldf(fmt.Sprintf("trunks[%d].qualify", i), "%v: want 0 (off) or at least 100ms", *t.Qualify)
		}
	}
	return nil
}

// qualifier holds the health of trunks and contacts.
type qualifier struct {
	mu       sync.Mutex
	trunks   map[string]*Health
	contacts map[string]*Health // by contactKey
	// observer is told when a trunk goes down or comes up (may be nil).
	observer func(trunk string, h Health)
}

// WithQualifyObserver sets a function told each time qualify marks a
// trunk down or up again. It runs on the trunk's probe goroutine: it must
// not block.
func WithQualifyObserver(f func(trunk string, h Health)) Option {
	return func(s *Server) error { s.qual.observer = f; return nil }
}

func contactKey(b Binding) string { return b.AOR + "\x00" + b.Contact }

// record notes one probe's outcome in h and reports whether Reachable
// changed.
func (h *Health) record(rtt time.Duration, err error, misses int, now time.Time) bool {
	was := h.Reachable || !h.Qualified // nothing known counts as reachable
	if !h.Qualified {
		h.Qualified, h.Since = true, now
	}
	if err == nil {
		h.misses, h.RTT, h.LastError = 0, rtt, ""
	} else {
		h.misses++
		h.LastError = err.Error()
	}
	h.Reachable = h.misses < misses
	if was != h.Reachable {
		h.Since = now
		return true
	}
	return false
}

// probe sends one OPTIONS to uri (at dest, when set) and returns its round
// trip. A 503 counts as a failure.
// transport, when set, is the transport to dest (a binding's
// sourceTransport), over uri's.
func (s *Server) probe(ctx context.Context, uri sip.Uri, dest, transport string, wait time.Duration) (time.Duration, error) {
	req := sip.NewRequest(sip.OPTIONS, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "voxgate", Host: s.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.AppendHeader(sip.NewHeader("User-Agent", "voxgate"))
	if uri.UriParams != nil {
		if tp, ok := uri.UriParams.Get("transport"); ok {
			req.SetTransport(strings.ToUpper(tp))
		}
	}
	if transport != "" {
		req.SetTransport(transport)
	}
	if dest != "" {
		req.SetDestination(dest)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	res, err := s.clientFor(req.Transport()).Do(ctx, req) // over TLS or a WebSocket: the peer's connection (tls.go, ws.go)
	rtt := time.Since(start)
	switch {
	case err != nil && ctx.Err() != nil:
		return 0, fmt.Errorf("%w within %v", ErrNoAnswer, wait)
	case err != nil:
		return 0, err
	case res.StatusCode == 503:
		return 0, fmt.Errorf("answered 503 %s", res.Reason)
	}
	return rtt, nil
}

// startQualify starts the probe loops (from Start).
func (s *Server) startQualify() {
	s.qual.mu.Lock()
	s.qual.trunks, s.qual.contacts = map[string]*Health{}, map[string]*Health{}
	s.qual.mu.Unlock()
	for _, t := range s.trunks {
		if every := *t.cfg.Qualify; every > 0 {
			s.wg.Add(1)
			go s.qualifyTrunk(t, every)
		}
	}
	if every := s.cfg.QualifyContacts; every > 0 {
		s.wg.Add(1)
		go s.qualifyContacts(every)
	}
}

func (s *Server) qualifyTrunk(t *trunk, every time.Duration) {
	defer s.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	wait := probeWait(every)
	for {
		rtt, err := s.probe(s.ctx, t.uri(), "", "", wait)
		if s.ctx.Err() != nil {
			return
		}
		s.qual.mu.Lock()
		h := s.qual.trunks[t.cfg.Name]
		if h == nil {
			h = &Health{}
			s.qual.trunks[t.cfg.Name] = h
		}
		changed := h.record(rtt, err, s.cfg.QualifyMisses, time.Now())
		up, now := h.Reachable, *h
		s.qual.mu.Unlock()
		if changed && s.qual.observer != nil {
			s.qual.observer(t.cfg.Name, now)
		}
		switch {
		case changed && up:
			t.log.Info("trunk up: answers OPTIONS", "rtt", rtt)
		case changed:
			t.log.Warn("trunk down: not answering OPTIONS", "error", err)
		case err != nil:
			t.log.Debug("trunk OPTIONS failed", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) qualifyContacts(every time.Duration) {
	defer s.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	wait := probeWait(every)
	for {
		s.probeContacts(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeContacts sends one OPTIONS to every registered contact at once (at
// most probeConcurrency in flight) and forgets contacts no longer
// registered.
func (s *Server) probeContacts(wait time.Duration) {
	bs := s.location.all()
	live := map[string]bool{}
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	for _, b := range bs {
		live[contactKey(b)] = true
		var uri sip.Uri
		if err := sip.ParseUri(b.Contact, &uri); err != nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rtt, err := s.probe(s.ctx, uri, b.Source, sourceTransport(b), wait)
			if s.ctx.Err() != nil {
				return
			}
			s.qual.mu.Lock()
			h := s.qual.contacts[contactKey(b)]
			if h == nil {
				h = &Health{}
				s.qual.contacts[contactKey(b)] = h
			}
			changed := h.record(rtt, err, s.cfg.QualifyMisses, time.Now())
			up := h.Reachable
			s.qual.mu.Unlock()
			log := s.log.With("user", b.AOR, "contact", b.Contact, "source", b.Source)
			switch {
			case changed && up:
				log.Info("contact reachable again: answers OPTIONS", "rtt", rtt)
			case changed:
				log.Warn("contact unreachable: not answering OPTIONS (not rung until it answers)", "error", err)
			}
		}()
	}
	wg.Wait()
	s.qual.mu.Lock()
	for k := range s.qual.contacts {
		if !live[k] {
			delete(s.qual.contacts, k)
		}
	}
	s.qual.mu.Unlock()
}

// TrunkHealth returns what qualify knows of each trunk, by name (a trunk
// with qualify off, or not probed yet, is absent).
func (s *Server) TrunkHealth() map[string]Health {
	s.qual.mu.Lock()
	defer s.qual.mu.Unlock()
	out := make(map[string]Health, len(s.qual.trunks))
	for k, h := range s.qual.trunks {
		out[k] = *h
	}
	return out
}

// TrunkUp reports whether calls should go out through trunk: false only
// when qualify marked it down.
func (s *Server) TrunkUp(trunk string) bool {
	s.qual.mu.Lock()
	defer s.qual.mu.Unlock()
	h := s.qual.trunks[trunk]
	return h == nil || h.Reachable
}

// ContactHealth returns what qualify knows of a registered contact (zero
// Health, Qualified false: nothing yet, or contact qualify is off).
func (s *Server) ContactHealth(b Binding) Health {
	s.qual.mu.Lock()
	defer s.qual.mu.Unlock()
	if h := s.qual.contacts[contactKey(b)]; h != nil {
		return *h
	}
	return Health{Reachable: true}
}

// UnreachableContacts counts the registered contacts qualify marked
// unreachable.
func (s *Server) UnreachableContacts() int {
	s.qual.mu.Lock()
	defer s.qual.mu.Unlock()
	n := 0
	for _, h := range s.qual.contacts {
		if !h.Reachable {
			n++
		}
	}
	return n
}

// ReachableBindings returns user's bindings that qualify has not marked
// unreachable, in registration order: the contacts a call should ring.
func (s *Server) ReachableBindings(user string) []Binding {
	bs := s.location.lookup(user)
	s.qual.mu.Lock()
	defer s.qual.mu.Unlock()
	return slices.DeleteFunc(bs, func(b Binding) bool {
		h := s.qual.contacts[contactKey(b)]
		return h != nil && !h.Reachable
	})
}

// Draining reports whether Drain was called: new calls and OPTIONS probes
// are answered 503 (a dispatcher in front, Kamailio's among them, takes
// the node out of its set).
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// supportedTags lists the option tags in supportedExtensions that are on,
// for a Supported header ("" when none): timer only when session timers are.
func (s *Server) supportedTags() string {
	var tags []string
	for _, t := range slices.Sorted(maps.Keys(supportedExtensions)) {
		if t == "timer" && !s.timers().on {
			continue
		}
		tags = append(tags, t)
	}
	return strings.Join(tags, ", ")
}
