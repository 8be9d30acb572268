package webclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
)

// healthServer starts a web server with readiness checks.
func healthServer(t *testing.T, opts ...Option) string {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithHandler(echoHandler{})}, opts...)
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, UDPPorts: "41000-41999"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestReadyz(t *testing.T) {
	var draining atomic.Bool
	drain := WithReadiness("draining", func(context.Context) error {
		if draining.Load() {
			return errors.New("shutting down (SIGTERM)")
		}
		return nil
	})
	storeDown := WithReadiness("store", func(context.Context) error { return errors.New("database is locked") })
	release := make(chan struct{}) // a check that ignores its context, until the test ends
	t.Cleanup(func() { close(release) })
	hangs := WithReadiness("slow", func(context.Context) error { <-release; return nil })
	cases := []struct {
		name     string
		opts     []Option
		draining bool
		code     int
		want     readiness
	}{
		{"no checks", nil, false, 200, readiness{Status: "ready"}},
		{"passing", []Option{drain}, false, 200, readiness{Status: "ready"}},
		{"draining", []Option{drain}, true, 503, readiness{Status: "not ready", Reason: "draining: shutting down (SIGTERM)",
			Failed: map[string]string{"draining": "shutting down (SIGTERM)"}}},
		{"two fail", []Option{drain, storeDown}, true, 503, readiness{Status: "not ready", Reason: "draining: shutting down (SIGTERM); store: database is locked",
			Failed: map[string]string{"draining": "shutting down (SIGTERM)", "store": "database is locked"}}},
		{"one of two fails", []Option{drain, storeDown}, false, 503, readiness{Status: "not ready", Reason: "store: database is locked",
			Failed: map[string]string{"store": "database is locked"}}},
		{"a check that hangs", []Option{hangs}, false, 503, readiness{Status: "not ready", Reason: "slow: did not answer in time",
			Failed: map[string]string{"slow": "did not answer in time"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			draining.Store(c.draining)
			base := healthServer(t, c.opts...)
			code, body := get(t, base+"/readyz")
			var got readiness
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if code != c.code || got.Status != c.want.Status || got.Reason != c.want.Reason || len(got.Failed) != len(c.want.Failed) {
				t.Fatalf("got %d %s, want %d %+v", code, body, c.code, c.want)
			}
			for k, v := range c.want.Failed {
				if got.Failed[k] != v {
					t.Fatalf("got %d %s, want %d %+v", code, body, c.code, c.want)
				}
			}
			// Alive whatever readiness says.
			if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
				t.Fatalf("healthz: %d %q", code, body)
			}
		})
	}
}

// Readiness follows the state: ready, draining, ready again.
func TestReadyzFollowsState(t *testing.T) {
	var down atomic.Bool
	base := healthServer(t, WithReadiness("draining", func(context.Context) error {
		if down.Load() {
			return errors.New("draining")
		}
		return nil
	}))
	for i, want := range []int{200, 503, 200} {
		down.Store(want == 503)
		if code, body := get(t, base+"/readyz"); code != want {
			t.Fatalf("step %d: got %d %s, want %d", i, code, body, want)
		}
	}
}
