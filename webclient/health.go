package webclient

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// readinessCheck is one thing /readyz asks before it answers 200.
type readinessCheck struct {
	name  string
	check func(context.Context) error
}

// readinessTimeout bounds each readiness check: a check that hangs counts as
// failed, so /readyz answers a load balancer in time.
const readinessTimeout = 2 * time.Second

// WithReadiness adds a check that /readyz asks on every request: while any
// returns an error, /readyz answers 503 with the names and errors (e.g.
// "draining" while SIGTERM lets calls finish, "store" while the database
// does not answer). It may be given several times; the checks run in order
// with a timeout each, and must be safe to call from many goroutines.
func WithReadiness(name string, check func(context.Context) error) Option {
	return func(s *Server) { s.ready = append(s.ready, readinessCheck{name: name, check: check}) }
}

// ErrCheckTimeout is the reason of a readiness check that did not answer.
var ErrCheckTimeout = errors.New("did not answer in time")

// mountHealth serves /healthz (the process is alive and serves HTTP: always
// 200) and /readyz (it should be sent new calls: 200, else 503 with the
// reasons in JSON).
func (s *Server) mountHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReadyz)
}

// readiness is /readyz's answer.
type readiness struct {
	Status string `json:"status"` // "ready" or "not ready"
	// Reason names each failed check and its error: "draining: ...; store: ...".
	Reason string `json:"reason,omitempty"`
	// Failed maps each failed check's name to its error.
	Failed map[string]string `json:"failed,omitempty"`
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	res := s.readiness(r.Context())
	code := http.StatusOK
	if res.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

// readiness asks every check, each with its own timeout.
func (s *Server) readiness(ctx context.Context) readiness {
	res := readiness{Status: "ready"}
	for _, c := range s.ready {
		err := runCheck(ctx, c)
		if err == nil {
			continue
		}
		if res.Failed == nil {
			res.Status, res.Failed = "not ready", map[string]string{}
		}
		if res.Reason != "" {
			res.Reason += "; "
		}
		res.Reason += c.name + ": " + err.Error()
		res.Failed[c.name] = err.Error()
	}
	return res
}

// runCheck runs one check, giving up on it after readinessTimeout (a check
// that ignores its context is left to finish on its own).
func runCheck(ctx context.Context, c readinessCheck) error {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ErrCheckTimeout
	}
}
