package main

// The media-stream load benchmark: SIP PCMU calls handed by the dialplan's
// stream action to a Twilio Media Streams echo bot, which runs in a child
// process of its own (this test binary again), so that this process's CPU
// time is voxgate's alone: RTP in, jitter buffer, decode, the JSON/base64
// framing and the WebSocket to the bot, the bot's audio back through the
// play queue, encode, RTP out.
//
//	go test -run '^$' -bench E2EStreams -benchtime 1x -timeout 20m ./cmd/voxgate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/loadgen"
)

// loadBotEnv asks the test binary to be the echo bot of the stream benchmark.
const loadBotEnv = "VOXGATE_LOADBOT"

// TestLoadBotChild is the stream benchmark's bot: a Twilio Media Streams
// echo (every media message is sent back as it came) on a loopback port it
// prints as "url ws://...", until its standard input closes.
func TestLoadBotChild(t *testing.T) {
	if os.Getenv(loadBotEnv) == "" {
		t.Skip("the load bot runs only as a child of the stream load benchmark")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var m struct {
			Event string `json:"event"`
		}
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			// A cheap look at the event: the bot's own CPU is not measured,
			// but a slow bot would hold the stream back.
			if kind != websocket.TextMessage || !strings.Contains(string(data[:min(len(data), 40)]), `"media"`) {
				if json.Unmarshal(data, &m) != nil || m.Event != "media" {
					continue
				}
			}
			if c.WriteMessage(websocket.TextMessage, data) != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("url ws://%s/media\n", ln.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	_ = srv.Close()
}

// startLoadBot starts the echo bot's process and returns its URL.
func startLoadBot(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadBotChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), loadBotEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	urls := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if u, ok := strings.CutPrefix(lines.Text(), "url "); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			tb.Fatal("the load bot exited before it listened")
		}
		return u
	case <-time.After(time.Minute):
		tb.Fatal("the load bot did not start")
	}
	return ""
}

// streamScenario: calls SIP PCMU phones, each talking, each call handed to
// the echo bot by the stream action (number 7000): each leg hears its own
// speech back through the bot. One stream per call.
func streamScenario(tb testing.TB, calls int) scenario {
	url := startLoadBot(tb)
	sc := scenario{unit: "stream", units: calls, bare: calls, minRx: 0.9,
		plan: fmt.Sprintf("      - number: \"7000\"\n        stream: {url: %q}\n", url)}
	for i := 0; i < calls; i++ {
		sc.legs = append(sc.legs, loadgen.Leg{Kind: loadgen.SIP, Codec: "pcmu", Talk: true, Dial: "7000"})
	}
	return sc
}

// BenchmarkE2EStreams: 200 SIP PCMU calls, each a leg streamed to a bot
// (Twilio framing) that echoes it; figures per stream (one leg each).
func BenchmarkE2EStreams(b *testing.B) {
	for _, n := range []int{50, 200} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) { report(b, runScenario(b, streamScenario(b, n), benchTiming(b))) })
	}
}
