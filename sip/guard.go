package sip

import (
	"log/slog"
	"sync"
	"time"
)

// guard slows, then refuses, a source address that keeps failing
// authentication (password guessing). State is per IP, kept for Window.
type guard struct {
	cfg GuardConfig
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	srcs    map[string]*guardEntry
	callIDs map[string]time.Time // Call-IDs that already failed once
}

type guardEntry struct {
	failures    int
	first       time.Time
	bannedUntil time.Time
}

// verdicts of the guard
const (
	guardAllow = iota
	guardSlow
	guardBanned
)

func newGuard(cfg GuardConfig, log *slog.Logger) *guard {
	return &guard{cfg: cfg, log: log, now: time.Now, srcs: map[string]*guardEntry{}, callIDs: map[string]time.Time{}}
}

// check returns the verdict for ip before its request is authenticated.
func (g *guard) check(ip string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.srcs[ip]
	if e == nil {
		return guardAllow
	}
	now := g.now()
	if now.Before(e.bannedUntil) {
		return guardBanned
	}
	if now.Sub(e.first) > g.cfg.Window {
		delete(g.srcs, ip)
		return guardAllow
	}
	if e.failures >= g.cfg.SlowAfter {
		return guardSlow
	}
	return guardAllow
}

// fail records a failed authentication by user from ip.
func (g *guard) fail(ip, user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.srcs[ip]
	if e == nil || now.Sub(e.first) > g.cfg.Window {
		if len(g.srcs) > 100000 { // bound memory under a spray of sources
			g.expireLocked(now)
		}
		e = &guardEntry{first: now}
		g.srcs[ip] = e
	}
	e.failures++
	switch {
	case e.failures == g.cfg.BanAfter:
		e.bannedUntil = now.Add(g.cfg.BanFor)
		g.log.Warn("authentication failures: source banned", "source", ip, "user", user, "failures", e.failures, "for", g.cfg.BanFor)
	case e.failures == g.cfg.SlowAfter:
		g.log.Warn("authentication failures: source slowed down", "source", ip, "user", user, "failures", e.failures, "delay", g.cfg.Delay)
	default:
		g.log.Info("authentication failed", "source", ip, "user", user, "failures", e.failures)
	}
}

// succeed forgets the failures of ip.
func (g *guard) succeed(ip string) {
	g.mu.Lock()
	if e := g.srcs[ip]; e != nil && !g.now().Before(e.bannedUntil) {
		delete(g.srcs, ip)
	}
	g.mu.Unlock()
}

func (g *guard) expireLocked(now time.Time) {
	for ip, e := range g.srcs {
		if now.Sub(e.first) > g.cfg.Window && now.After(e.bannedUntil) {
			delete(g.srcs, ip)
		}
	}
}

// repeated records a failed authentication in dialog callID and reports
// whether one had failed there before.
func (g *guard) repeated(callID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if at, ok := g.callIDs[callID]; ok && now.Sub(at) < g.cfg.Window {
		return true
	}
	if len(g.callIDs) > 10000 {
		for id, at := range g.callIDs {
			if now.Sub(at) >= g.cfg.Window {
				delete(g.callIDs, id)
			}
		}
	}
	g.callIDs[callID] = now
	return false
}
