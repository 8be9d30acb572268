package webclient

import (
	"bufio"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/voxgate/voxgate/api"
)

// Metrics are in Prometheus's model (package api holds the types).
type (
	Metric = api.Metric
	Sample = api.Sample
	Label  = api.Label
)

// metrics are the web server's own.
func (s *Server) metrics() []Metric {
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
	pages := len(sigs)
	return []Metric{
		api.Gauge("voxgate_web_pages", "Browser pages connected over the WebSocket.", float64(pages)),
		api.Gauge("voxgate_web_calls", "Browser calls with a PeerConnection.", float64(calls)),
		api.Gauge("voxgate_web_ringing", "Calls ringing browser pages now.", float64(rings)),
		{Name: "voxgate_web_logins_total", Help: "Web sign-ins, by result.", Type: "counter", Samples: []Sample{
			{Labels: []Label{{Name: "result", Value: "ok"}}, Value: float64(s.loginsOK.Load())},
			{Labels: []Label{{Name: "result", Value: "refused"}}, Value: float64(s.loginsRefused.Load())},
		}},
	}
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	ms := append(s.metrics(), s.control.Metrics()...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	writeMetrics(bw, ms)
	_ = bw.Flush()
}

// writeMetrics writes ms in the Prometheus text exposition format.
func writeMetrics(w *bufio.Writer, ms []Metric) {
	for _, m := range ms {
		w.WriteString("# HELP " + m.Name + " " + strings.ReplaceAll(strings.ReplaceAll(m.Help, `\`, `\\`), "\n", `\n`) + "\n")
		w.WriteString("# TYPE " + m.Name + " " + m.Type + "\n")
		for _, smp := range m.Samples {
			w.WriteString(m.Name)
			if len(smp.Labels) > 0 {
				w.WriteByte('{')
				for i, l := range smp.Labels {
					if i > 0 {
						w.WriteByte(',')
					}
					w.WriteString(l.Name + `="` + escapeLabel(l.Value) + `"`)
				}
				w.WriteByte('}')
			}
			w.WriteByte(' ')
			w.WriteString(strconv.FormatFloat(smp.Value, 'g', -1, 64))
			w.WriteByte('\n')
		}
	}
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }
