package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TrunkState is the registration state of a trunk, for logs and the API.
type TrunkState struct {
	Name string
	// Registered: the last REGISTER succeeded and has not expired.
	Registered bool
	Expires    time.Time
	LastError  string
	Attempts   int // registrations sent since start (for tests and stats)
}

// trunk keeps voxgate registered at one carrier.
type trunk struct {
	s      *Server
	cfg    *TrunkConfig
	log    *slog.Logger
	callID string
	cseq   uint32
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	state TrunkState
	lapse *time.Timer // marks the registration lapsed at its expiry if no refresh came
}

func newTrunk(s *Server, cfg *TrunkConfig) *trunk {
	return &trunk{s: s, cfg: cfg, log: s.log.With("trunk", cfg.Name), callID: sip.GenerateTagN(24),
		state: TrunkState{Name: cfg.Name}}
}

func (t *trunk) start(ctx context.Context) {
	if !t.cfg.ShouldRegister() {
		return
	}
	ctx, t.cancel = context.WithCancel(ctx)
	t.wg.Add(1)
	go t.loop(ctx)
}

// stop ends the refresh loop and unregisters (best effort, 2 s).
func (t *trunk) stop() {
	if t.cancel == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
	t.mu.Lock()
	if t.lapse != nil {
		t.lapse.Stop()
	}
	was := t.state.Registered
	t.state.Registered = false
	st := t.state
	t.mu.Unlock()
	if was {
		t.s.trunkChanged(st)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := t.register(ctx, 0); err == nil {
			t.log.Info("trunk unregistered")
		}
	}
}

func (t *trunk) loop(ctx context.Context) {
	defer t.wg.Done()
	backoff := time.Second
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		exp, err := t.register(rctx, t.cfg.Expires)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		t.mu.Lock()
		t.state.Attempts++
		was := t.state.Registered
		if err != nil {
			t.state.Registered = false
			t.state.LastError = err.Error()
			wait = backoff
			backoff = min(backoff*2, t.cfg.RetryMax)
		} else {
			t.state.Registered = true
			t.state.LastError = ""
			t.state.Expires = time.Now().Add(time.Duration(exp) * time.Second)
			if t.lapse != nil {
				t.lapse.Stop()
			}
			t.lapse = time.AfterFunc(time.Until(t.state.Expires), t.lapsed)
			backoff = time.Second
			wait = refreshAfter(exp)
		}
		// A change, or the first attempt's failure (an operator learns a
		// trunk never came up), is news; a failed retry is not.
		st, changed := t.state, t.state.Registered != was || (err != nil && t.state.Attempts == 1)
		t.mu.Unlock()
		if changed {
			t.s.trunkChanged(st)
		}
		switch {
		case err != nil:
			t.log.Warn("trunk registration failed", "error", err, "retry_in", wait)
		case !was:
			t.log.Info("trunk registered", "registrar", t.cfg.Registrar, "expires", exp)
		default:
			t.log.Debug("trunk registration refreshed", "expires", exp)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// lapsed marks the registration down when it expired before a refresh was
// answered (the carrier is unreachable: the refresh is still waiting).
func (t *trunk) lapsed() {
	t.mu.Lock()
	if !t.state.Registered || time.Now().Before(t.state.Expires) {
		t.mu.Unlock()
		return
	}
	t.state.Registered = false
	t.state.LastError = "registration lapsed: the refresh was not answered"
	st := t.state
	t.mu.Unlock()
	t.log.Warn("trunk registration lapsed")
	t.s.trunkChanged(st)
}

// refreshAfter returns when to refresh a registration granted for exp seconds.
func refreshAfter(exp int) time.Duration {
	d := time.Duration(exp) * time.Second
	if exp > 60 {
		return d - 30*time.Second
	}
	return max(d/2, 500*time.Millisecond)
}

func (t *trunk) uri() sip.Uri {
	host, port, _ := net.SplitHostPort(t.cfg.host)
	p, _ := strconv.Atoi(port)
	u := sip.Uri{Scheme: "sip", Host: host, Port: p}
	if t.cfg.Transport != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.cfg.Transport)
	}
	return u
}

// register sends one REGISTER (answering a digest challenge) and returns
// the expiry the registrar granted.
func (t *trunk) register(ctx context.Context, expires int) (int, error) {
	recipient := t.uri()
	aor := sip.Uri{Scheme: "sip", User: t.cfg.Username, Host: recipient.Host}
	t.mu.Lock()
	t.cseq++
	cseq := t.cseq
	t.mu.Unlock()
	build := func() *sip.Request {
		req := sip.NewRequest(sip.REGISTER, recipient)
		from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(10))
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
		callID := sip.CallIDHeader(t.callID)
		req.AppendHeader(&callID)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
		contact := sip.Uri{Scheme: "sip", User: t.cfg.Username, Host: t.s.sdpIP.String(), Port: t.s.localPort(t.cfg.Transport)}
		if t.cfg.Transport != "udp" {
			contact.UriParams = sip.NewParams()
			contact.UriParams.Add("transport", t.cfg.Transport)
		}
		req.AppendHeader(&sip.ContactHeader{Address: contact})
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
		req.AppendHeader(sip.NewHeader("User-Agent", "voxgate"))
		if t.cfg.Transport != "udp" {
			req.SetTransport(strings.ToUpper(t.cfg.Transport))
		}
		fitTransport(req)
		return req
	}
	req := build()
	client := t.s.clientFor(t.cfg.Transport)
	res, err := client.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		t.mu.Lock()
		t.cseq++
		t.mu.Unlock()
		res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: t.cfg.Username, Password: t.cfg.Password})
		if err != nil {
			return 0, err
		}
		t.mu.Lock()
		t.cseq = req.CSeq().SeqNo
		t.mu.Unlock()
	}
	if res.StatusCode == 423 && expires > 0 {
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > expires {
				t.cfg.Expires = n
				return t.register(ctx, n)
			}
		}
	}
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("registrar answered %d %s", res.StatusCode, res.Reason)
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			granted = n
		}
	}
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok && c.Address.User == t.cfg.Username {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil {
					granted = n
				}
			}
		}
	}
	if expires > 0 && granted <= 0 {
		granted = expires
	}
	return granted, nil
}

// TrunkStates returns the registration state of every trunk.
func (s *Server) TrunkStates() []TrunkState {
	out := make([]TrunkState, 0, len(s.trunks))
	now := time.Now()
	for _, t := range s.trunks {
		t.mu.Lock()
		st := t.state
		t.mu.Unlock()
		// A registration whose refresh has not come back yet lapses at expiry.
		st.Registered = st.Registered && now.Before(st.Expires)
		out = append(out, st)
	}
	return out
}
