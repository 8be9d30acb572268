package main

// End-to-end signalling benchmarks: sipp (another process) drives voxgate's
// SIP server on loopback at a fixed rate, and this process's CPU time over
// one window is voxgate's alone. Calls and registrations go all the way
// through: the transaction layer, digest auth, the dialplan, the echo's RTP
// session (sockets opened and closed per call), the call history and the
// registrations in SQLite, as in production.
//
//	go test -run '^$' -bench E2ESipp -benchtime 1x ./cmd/voxgate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// sippLoad is one sipp run at a fixed rate against a load gateway.
type sippLoad struct {
	rate int      // calls (or registrations) started per second
	args []string // the scenario and its own arguments
	// perCall is the SIP requests voxgate receives per call (for the
	// requests/s figure).
	perCall int
	unit    string // what a "call" is: "call" or "registration"
}

// sippStats are the counters of sipp's last screen.
type sippStats struct{ ok, failed int }

var sippCounter = regexp.MustCompile(`(?m)^\s*(Successful call|Failed call)\s+\|\s+\d+\s+\|\s+(\d+)`)

// readSippScreen reads sipp's final screen (-trace_screen) for the
// cumulative successful and failed calls.
func readSippScreen(path string) (sippStats, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sippStats{}, "", err
	}
	var st sippStats
	found := 0
	for _, m := range sippCounter.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[2])
		if m[1] == "Successful call" {
			st.ok = n
		} else {
			st.failed = n
		}
		found++
	}
	if found < 2 {
		return st, string(b), fmt.Errorf("no call counters in sipp's screen")
	}
	return st, string(b), nil
}

// runSippLoad starts sipp at l.rate for the warm-up, the window and a
// second more, measures voxgate's CPU over the window, waits for sipp to
// end and fails unless every call succeeded.
func runSippLoad(b testing.TB, g *loadGateway, l sippLoad, tm loadTiming) result {
	b.Helper()
	peertest.Need(b, "sipp")
	dir := b.TempDir()
	total := int(float64(l.rate) * (tm.warmup + tm.window + time.Second).Seconds())
	port := peertest.FreePorts(b, 1)
	args := append([]string{g.sip}, l.args...)
	args = append(args, "-r", strconv.Itoa(l.rate), "-m", strconv.Itoa(total), "-l", strconv.Itoa(4*l.rate),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin", "-timeout", "120s", "-recv_timeout", "5000",
		"-trace_screen", "-screen_file", "screen.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := sippInBackground(ctx, dir, args...)
	time.Sleep(tm.warmup)
	if tm.profile != "" {
		f, err := os.Create(tm.profile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	var m0, m1 runtime.MemStats
	if os.Getenv("VOXGATE_LOADBENCH_MEMPROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	runtime.ReadMemStats(&m0)
	perfDone := startPerf(b, tm.perf, tm.window)
	c0, t0 := selfCPU(), time.Now()
	time.Sleep(tm.window)
	c1, t1 := selfCPU(), time.Now()
	runtime.ReadMemStats(&m1)
	perfDone()
	if p := os.Getenv("VOXGATE_LOADBENCH_MEMPROFILE"); p != "" {
		writeAllocProfile(b, p)
	}
	if tm.profile != "" {
		pprof.StopCPUProfile()
	}
	run := <-done
	st, screen, err := readSippScreen(filepath.Join(dir, "screen.txt"))
	if err != nil || st.failed > 0 || st.ok != total {
		b.Fatalf("sipp: %d of %d %ss succeeded, %d failed (%v; exit: %v)\n%s\n%s", st.ok, total, l.unit, st.failed, err, run.err,
			tail(screen, 40), tail(run.out, 20))
	}
	share := float64(c1-c0) / float64(t1.Sub(t0))
	b.Logf("%d %ss at %d/s: in the %s window voxgate used %s CPU (%.1f%% of a core)", total, l.unit, l.rate,
		t1.Sub(t0).Round(time.Millisecond), (c1 - c0).Round(time.Millisecond), 100*share)
	return result{
		"%core":             100 * share,
		l.unit + "s/s/core": float64(l.rate) / share,
		"requests/s/core":   float64(l.rate*l.perCall) / share,
		"us/" + l.unit:      float64((c1 - c0).Microseconds()) / (float64(l.rate) * t1.Sub(t0).Seconds()),
		// Every heap allocation of the process in the window, whatever
		// made it, per request: the server side of the SIP path whole
		// (socket read, the read filter, the parse, the transaction, the
		// handler, the response, the write).
		"allocs/request": float64(m1.Mallocs-m0.Mallocs) / (float64(l.rate*l.perCall) * t1.Sub(t0).Seconds()),
	}
}

// BenchmarkE2ESippInviteBye: sipp's built-in uac scenario calls the echo:
// INVITE (with an SDP offer), 200 with voxgate's answer, ACK, BYE at once
// (no media). Per call voxgate parses and answers three requests, routes
// the call, opens and closes an RTP session (two sockets) and writes the
// call's record (started, answered, ended) to SQLite. At a higher rate the
// process is idle less often between requests, and a call costs less (the
// runtime's and the scheduler's wake-ups are shared by more work): both
// rates are reported.
func BenchmarkE2ESippInviteBye(b *testing.B) {
	for _, rate := range []int{200, 500} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { report(b, sippInviteBye(b, rate, benchTiming(b))) })
	}
}

func sippInviteBye(tb testing.TB, rate int, tm loadTiming) result {
	g := startLoadGateway(tb, 0, 0, 0, "")
	return runSippLoad(tb, g, sippLoad{rate: rate, perCall: 3, unit: "call", args: []string{"-sn", "uac", "-s", "9196"}}, tm)
}

// BenchmarkE2ESippRegister: sipp registers 1,000 users in turn (page1 to
// page1000, from an injection file), each REGISTER answered 401 and then
// sent again with digest credentials: two requests per registration, and
// the binding written to SQLite.
func BenchmarkE2ESippRegister(b *testing.B) {
	b.Run("rate=500", func(b *testing.B) { report(b, sippRegister(b, 500, 1000, benchTiming(b))) })
}

func sippRegister(tb testing.TB, rate, users int, tm loadTiming) result {
	g := startLoadGateway(tb, users, 0, 0, "")
	var csv strings.Builder
	csv.WriteString("SEQUENTIAL\n")
	for i := 1; i <= users; i++ {
		fmt.Fprintf(&csv, "page%d;[authentication username=page%d password=page-secret]\n", i, i)
	}
	inf := filepath.Join(tb.TempDir(), "users.csv")
	if err := os.WriteFile(inf, []byte(csv.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	scenario, err := filepath.Abs("testdata/sipp/register-users.xml")
	if err != nil {
		tb.Fatal(err)
	}
	return runSippLoad(tb, g, sippLoad{rate: rate, perCall: 2, unit: "registration", args: []string{"-sf", scenario, "-inf", inf}}, tm)
}

// TestSippLoadSmoke runs both signalling benchmarks tiny (20 per second, a
// 1 s window), so that their harness cannot rot: every call and every
// registration must succeed.
func TestSippLoadSmoke(t *testing.T) {
	peertest.Need(t, "sipp")
	tm := loadTiming{warmup: 300 * time.Millisecond, window: time.Second}
	t.Run("invite-bye", func(t *testing.T) { t.Logf("%v", sippInviteBye(t, 20, tm)) })
	t.Run("register", func(t *testing.T) { t.Logf("%v", sippRegister(t, 20, 30, tm)) })
}

// writeAllocProfile writes the allocation profile to path: every allocation
// since the window began (runtime.MemProfileRate 1), and a sample of those
// before it. Read it with go tool pprof -sample_index=alloc_objects.
func writeAllocProfile(b testing.TB, path string) {
	runtime.GC() // the profile shows the allocations up to the last GC
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
