// Package guard is voxgate's one brute-force guard, shared by every way in
// (SIP digest, the web sign-in, the REST API's token, the WebSocket): a
// source address that keeps failing is slowed down, then banned everywhere
// for a while; a user name that keeps failing from many addresses is slowed
// down (never banned: that would lock the real user out).
package guard

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config tunes the guard.
type Config struct {
	// SlowAfter failures from one address (or for one user) within Window
	// make every further failure wait Delay; BanAfter failures from one
	// address refuse it everywhere for BanFor.
	SlowAfter int           `yaml:"slow_after"`
	BanAfter  int           `yaml:"ban_after"`
	Window    time.Duration `yaml:"window"`
	Delay     time.Duration `yaml:"delay"`
	BanFor    time.Duration `yaml:"ban_for"`
}

// Defaults fills the zero fields: 5 and 20 failures in 5m, a 1s delay, a
// 15m ban.
func (c *Config) Defaults() {
	if c.SlowAfter == 0 {
		c.SlowAfter = 5
	}
	if c.BanAfter == 0 {
		c.BanAfter = 20
	}
	if c.Window == 0 {
		c.Window = 5 * time.Minute
	}
	if c.Delay == 0 {
		c.Delay = time.Second
	}
	if c.BanFor == 0 {
		c.BanFor = 15 * time.Minute
	}
}

// Check reports a contradiction: a ban before the slow-down.
func (c *Config) Check() error {
	if c.BanAfter < c.SlowAfter {
		return fmt.Errorf("ban_after must be at least slow_after (%d)", c.SlowAfter)
	}
	return nil
}

// maxEntries bounds the tables under a spray of sources or user names.
const maxEntries = 100000

// Guard counts failures by source address and by user.
type Guard struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	srcs  map[string]*entry
	users map[string]*entry
}

type entry struct {
	failures    int
	first       time.Time
	bannedUntil time.Time
}

// New returns a guard; cfg's zero fields take the defaults.
func New(cfg Config, log *slog.Logger) *Guard {
	cfg.Defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Guard{cfg: cfg, log: log, now: time.Now, srcs: map[string]*entry{}, users: map[string]*entry{}}
}

// Banned reports whether ip is refused now.
func (g *Guard) Banned(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.srcs[ip]
	return e != nil && g.now().Before(e.bannedUntil)
}

// Failed records a failed authentication as user from ip through via
// ("sip", "web", "api", ...) and returns how long to hold the answer back
// (a tarpit: a guesser gets one try per delay); Banned tells whether the
// source is now refused.
func (g *Guard) Failed(ip, user, via string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.bump(g.srcs, ip, now)
	u := &entry{}
	if user != "" {
		u = g.bump(g.users, user, now)
	}
	switch {
	case e.failures == g.cfg.BanAfter:
		e.bannedUntil = now.Add(g.cfg.BanFor)
		g.log.Warn("authentication failures: source banned on every way in", "source", ip, "user", user, "via", via, "failures", e.failures, "for", g.cfg.BanFor)
	case e.failures == g.cfg.SlowAfter:
		g.log.Warn("authentication failures: source slowed down", "source", ip, "user", user, "via", via, "failures", e.failures, "delay", g.cfg.Delay)
	case u.failures == g.cfg.BanAfter:
		g.log.Warn("authentication failures: user slowed down (from many sources)", "user", user, "via", via, "failures", u.failures, "delay", g.cfg.Delay)
	default:
		g.log.Info("authentication failed", "source", ip, "user", user, "via", via, "failures", e.failures)
	}
	if e.failures >= g.cfg.SlowAfter || u.failures >= g.cfg.BanAfter {
		return g.cfg.Delay
	}
	return 0
}

// bump counts a failure under key, starting a new window when the last one
// is over.
func (g *Guard) bump(m map[string]*entry, key string, now time.Time) *entry {
	e := m[key]
	if e == nil || (now.Sub(e.first) > g.cfg.Window && !now.Before(e.bannedUntil)) {
		if len(m) >= maxEntries {
			expire(m, now, g.cfg.Window)
		}
		e = &entry{first: now}
		m[key] = e
	}
	e.failures++
	return e
}

// Succeeded forgets the failures of ip (not a ban) and of user.
func (g *Guard) Succeeded(ip, user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.srcs[ip]; e != nil && !g.now().Before(e.bannedUntil) {
		delete(g.srcs, ip)
	}
	delete(g.users, user)
}

func expire(m map[string]*entry, now time.Time, window time.Duration) {
	for k, e := range m {
		if now.Sub(e.first) > window && now.After(e.bannedUntil) {
			delete(m, k)
		}
	}
}
