package webclient

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsState is what the server keeps for /metrics.
type metricsState struct {
	collectors     []prometheus.Collector // given with WithCollectors
	version        string                 // voxgate_build_info's version (WithVersion)
	metricsHandler http.Handler           // promhttp over the server's own registry
}

// WithCollectors adds collectors to what /metrics serves (the SIP side's
// and the switchboard's, wired by cmd/voxgate). NewServer fails when two
// collectors describe the same metric.
func WithCollectors(cs ...prometheus.Collector) Option {
	return func(s *Server) { s.collectors = append(s.collectors, cs...) }
}

// WithVersion sets the version voxgate_build_info shows (default: the
// main module's version from the build information, else the commit it was
// built from, else "devel").
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// newMetrics builds the server's own registry (not the process-wide
// default: a test process runs several servers) with the Go runtime's and
// the process's collectors, the build information, the web server's own
// metrics and the given collectors, and the /metrics handler over it.
func (s *Server) newMetrics() error {
	reg := prometheus.NewRegistry()
	cs := append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(s.version),
		webCollector{s},
	}, s.collectors...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("webclient: metrics: %w", err)
		}
	}
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError, // serve what could be collected
	})
	return nil
}

// promLogger passes promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metricsHandler.ServeHTTP(w, r)
}

// buildInfo is voxgate_build_info{version,revision,goversion} = 1.
func buildInfo(version string) prometheus.Collector {
	revision, goversion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, st := range bi.Settings {
			switch st.Key {
			case "vcs.revision":
				revision = st.Value
			case "vcs.modified":
				dirty = st.Value == "true"
			}
		}
		if dirty {
			revision += "-dirty"
		}
		if v := bi.Main.Version; version == "" && v != "" && v != "(devel)" {
			version = v // a tagged module built with go install
		}
		if version == "" && revision != "unknown" {
			version = revision[:min(12, len(revision))] // a checkout: the commit
			if dirty {
				version += "-dirty"
			}
		}
	}
	if version == "" {
		version = "devel"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "voxgate_build_info",
		Help:        "Always 1; the labels say which voxgate runs: its version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goversion}})
	g.Set(1)
	return g
}

// webCollector is the web server's own metrics.
type webCollector struct{ s *Server }

var (
	webPagesDesc   = prometheus.NewDesc("voxgate_web_pages", "Browser pages connected over the WebSocket.", nil, nil)
	webCallsDesc   = prometheus.NewDesc("voxgate_web_calls", "Browser calls with a PeerConnection.", nil, nil)
	webRingingDesc = prometheus.NewDesc("voxgate_web_ringing", "Calls ringing browser pages now.", nil, nil)
	webLoginsDesc  = prometheus.NewDesc("voxgate_web_logins_total", "Web sign-ins, by result (ok, refused).", []string{"result"}, nil)
)

func (webCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- webPagesDesc
	ch <- webCallsDesc
	ch <- webRingingDesc
	ch <- webLoginsDesc
}

func (c webCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	var sigs []*signal
	for _, set := range s.online {
		for g := range set {
			sigs = append(sigs, g)
		}
	}
	rings := len(s.rings)
	s.mu.Unlock()
	calls := 0
	for _, g := range sigs { // outside s.mu: a page takes its own lock first
		calls += g.callCount()
	}
	ch <- prometheus.MustNewConstMetric(webPagesDesc, prometheus.GaugeValue, float64(len(sigs)))
	ch <- prometheus.MustNewConstMetric(webCallsDesc, prometheus.GaugeValue, float64(calls))
	ch <- prometheus.MustNewConstMetric(webRingingDesc, prometheus.GaugeValue, float64(rings))
	ch <- prometheus.MustNewConstMetric(webLoginsDesc, prometheus.CounterValue, float64(s.loginsOK.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(webLoginsDesc, prometheus.CounterValue, float64(s.loginsRefused.Load()), "refused")
}
