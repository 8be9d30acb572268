package webclient

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs a server's /metrics and parses it as Prometheus would.
func scrape(t *testing.T, base, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// labels returns a sample's labels as a map.
func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// odd is a collector whose label value needs escaping.
var oddDesc = prometheus.NewDesc("voxgate_test_odd", "A label value with a quote, a backslash and a newline.", []string{"v"}, nil)

type odd struct{}

func (odd) Describe(ch chan<- *prometheus.Desc) { ch <- oddDesc }
func (odd) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(oddDesc, prometheus.GaugeValue, 2, "a\"b\\c\n")
}

// /metrics of a real server parses as the Prometheus text format and has
// the Go runtime's and the process's metrics, the build information, the
// web server's own metrics and the collectors it was given, each server
// with its own registry; everything passes promtool's lint.
func TestMetricsScrape(t *testing.T) {
	base := apiWeb(t, "tok", &fakeControl{}, WithCollectors(odd{}), WithVersion("v9.9.9"))
	other := apiWeb(t, "tok", &fakeControl{}) // a second server in the process: no clash
	fams := scrape(t, base, "tok")
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_info", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "process_start_time_seconds", "voxgate_build_info",
		"voxgate_web_pages", "voxgate_web_calls", "voxgate_web_ringing", "voxgate_web_logins_total", "voxgate_test_odd"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if bi := fams["voxgate_build_info"]; bi != nil {
		m := bi.GetMetric()[0]
		l := labels(m)
		if m.GetGauge().GetValue() != 1 || l["version"] != "v9.9.9" || l["goversion"] != runtime.Version() || l["revision"] == "" {
			t.Errorf("voxgate_build_info %v = %v", l, m.GetGauge().GetValue())
		}
	}
	if o := fams["voxgate_test_odd"]; o != nil {
		if v := labels(o.GetMetric()[0])["v"]; v != "a\"b\\c\n" {
			t.Errorf("label value came back as %q", v)
		}
	}
	if l := fams["voxgate_web_logins_total"]; l == nil || l.GetType() != dto.MetricType_COUNTER || len(l.GetMetric()) != 2 {
		t.Errorf("voxgate_web_logins_total: %v", l)
	}
	problems, err := promlint.NewWithMetricFamilies(familyList(fams)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	if fams := scrape(t, other, "tok"); fams["voxgate_test_odd"] != nil || fams["voxgate_build_info"] == nil {
		t.Error("the second server's registry is not its own")
	}
}

func familyList(m map[string]*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, f := range m {
		out = append(out, f)
	}
	return out
}

// The web server's own collector passes promtool's lint, and two
// collectors of one metric are refused when the server is made.
func TestMetricsLintAndClash(t *testing.T) {
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, UDPPorts: "41000-41999"},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []prometheus.Collector{webCollector{s}, buildInfo("")} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	}
	_, err = NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, UDPPorts: "41000-41999"},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithCollectors(odd{}, odd{}))
	if err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("two collectors of one metric: %v", err)
	}
}
