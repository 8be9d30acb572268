package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/configs"
)

// webBase finds the web server's address in the binary's JSON log.
func (p *process) webBase(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`"msg":"web listening".*?"addr":"tcp:([^"]+)"`).FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no web address in the log:\n%s", p.output())
	}
	return "http://" + m[1]
}

// httpGet returns a GET's status and body ("" and 0 when it fails).
func httpGet(url string) (int, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// SIGTERM during a call: /readyz turns 503 with its reason at once, so a
// load balancer stops sending calls, while /healthz stays 200 and the call
// goes on until the drain ends.
func TestSIGTERMReadyz(t *testing.T) {
	peertest.Need(t, "baresip")
	p := startBinary(t, "drain_timeout: 4s\n")
	base := p.webBase(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(base + path); code != 200 {
			t.Fatalf("%s before SIGTERM: %d %s", path, code, body)
		}
	}
	b := echoCall(t, p.addr)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.output(), `"msg":"call answered"`) {
		if time.Now().After(deadline) {
			t.Fatal("the echo call was not answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	deadline = time.Now().Add(2 * time.Second)
	for code, body = httpGet(base + "/readyz"); code != 503 && time.Now().Before(deadline); code, body = httpGet(base + "/readyz") {
		time.Sleep(20 * time.Millisecond)
	}
	if code != 503 {
		t.Fatalf("/readyz after SIGTERM: %d %s", code, body)
	}
	var ready struct {
		Status, Reason string
		Failed         map[string]string
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || ready.Status != "not ready" || ready.Failed["draining"] == "" ||
		!strings.HasPrefix(ready.Reason, "draining: shutting down (SIGTERM)") {
		t.Fatalf("/readyz said %s (%v)", body, err)
	}
	if code, body := httpGet(base + "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz while draining: %d %q", code, body)
	}
	if b.WaitEnded(0) {
		t.Fatal("SIGTERM ended the call at once")
	}
	if code, _ := httpGet(base + "/readyz"); code != 503 {
		t.Fatalf("/readyz later in the drain: %d", code)
	}
	if _, err := p.waitExit(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	// The JSON log writes durations in milliseconds (and the web address
	// above as tcp:ip:port).
	if !strings.Contains(p.output(), `"msg":"SIGTERM: letting calls finish","calls":1,"timeout_ms":4000}`) {
		t.Error("the SIGTERM line does not give the drain timeout in milliseconds")
	}
	if !b.WaitEnded(3 * time.Second) {
		t.Fatalf("the call was not hung up after the drain:\n%s", b.Output())
	}
}

// defaultConfigOn is configs/default.yaml (its users, passwords and API
// token, the embedded dialplan) on free ports, logging everything in JSON.
func defaultConfigOn(t *testing.T) (cfg, sipAddr string) {
	t.Helper()
	port := peertest.FreePorts(t, 1)
	rtp := peertest.FreePorts(t, 20)
	web := peertest.FreePorts(t, 20)
	sipAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg = string(configs.Default)
	for _, r := range []struct{ old, new string }{
		{`level: info`, `level: debug`},
		{`format: text`, `format: json`},
		{`"127.0.0.1:5060"`, `"` + sipAddr + `"`},
		{`rtp_ports: "20000-20999"`, fmt.Sprintf(`rtp_ports: "%d-%d"`, rtp, rtp+19)},
		{`listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:0"`},
		{`udp_ports: "40000-40999"`, fmt.Sprintf(`udp_ports: "%d-%d"`, web, web+19)},
		{`data_dir: ./data`, fmt.Sprintf(`data_dir: %q`, t.TempDir())},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("configs/default.yaml has no %s any more: update this test", r.old)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	return cfg, sipAddr
}

// The secrets of configs/default.yaml and configs/dialplan.yaml.
var defaultSecrets = []string{"alice-secret", "bob-secret", "demo-api-token"}

const defaultPIN = "1234" // room 7000's, in configs/dialplan.yaml

// A full call into the default PIN bridge, keyed with its PIN, a web
// sign-in that fails and one that works, REST API requests with a wrong and
// the right token, a guest link made and used (and used damaged), all
// logged at debug: the PIN, as a sequence or digit by digit, the
// passwords, the API token and the guest link's token appear nowhere.
func TestLogsKeepSecrets(t *testing.T) {
	peertest.Need(t, "baresip")
	if !strings.Contains(string(configs.Dialplan), `pin: {room: {name: bridge, pin: "`+defaultPIN+`"}}`) {
		t.Fatal("configs/dialplan.yaml's 7000 PIN changed: update this test")
	}
	cfg, sipAddr := defaultConfigOn(t)
	p := startBinaryConfig(t, cfg, sipAddr)
	base := p.webBase(t)

	// The web side: a wrong password, the right one, the API with a wrong
	// and the right token.
	for _, pw := range []string{"bob-secret-typo", "bob-secret"} {
		res, err := http.Post(base+"/api/login", "application/json", strings.NewReader(`{"user":"bob","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	for _, tok := range []string{"demo-api-token-typo", "demo-api-token"} {
		req, _ := http.NewRequest("GET", base+"/api/rooms", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	// A guest link (a signed token), used once as it is and once damaged.
	req, _ := http.NewRequest("POST", base+"/api/v1/rooms/001/guest-links", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer demo-api-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var link struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&link); err != nil || res.StatusCode != 201 || len(link.Token) < 20 {
		t.Fatalf("guest link: %d %v %+v", res.StatusCode, err, link)
	}
	res.Body.Close()
	secrets := append(append([]string(nil), defaultSecrets...), link.Token)
	for _, tok := range []string{link.Token, link.Token + "x"} {
		res, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(`{"guest":"`+tok+`","name":"Bob"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	// The PIN bridge: alice keys 1234# and is let in.
	phone := peertest.StartPhone(t, p.addr, peertest.Phone{User: "alice", Password: "alice-secret", Tone: 600, Dial: "7000"})
	waitLog := func(s string) {
		t.Helper()
		deadline := time.Now().Add(8 * time.Second)
		for !strings.Contains(p.output(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("voxgate did not log %s", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(`"msg":"call answered"`)
	time.Sleep(time.Second) // the prompt
	phone.Command("sndcode", defaultPIN+"#")
	waitLog(`"msg":"PIN accepted"`)
	time.Sleep(500 * time.Millisecond)
	phone.Command("hangup", "")
	waitLog(`"msg":"call ended"`)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.waitExit(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}

	log := p.output()
	if !strings.Contains(log, `"level":"DEBUG"`) || !strings.Contains(log, `"msg":"dtmf received"`) {
		t.Fatal("the log is not the full debug log of the call")
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds the secret %q", s)
		}
	}
	seq, strs := logValues(t, log)
	if strings.Contains(seq, defaultPIN) {
		t.Errorf("the log holds the PIN digit by digit: %q", seq)
	}
	if strings.Contains(strs, defaultPIN) {
		t.Errorf("the log holds the PIN %q:\n%s", defaultPIN, strs)
	}
	if t.Failed() {
		t.Logf("voxgate's log:\n%s", log)
	}
}

// Values that are random or addresses, which may hold 1234 by chance.
var (
	randomKeys = regexp.MustCompile(`(^|_)(id|time|tag|branch)$`)
	addrLike   = regexp.MustCompile(`(\d{1,3}\.){3}\d{1,3}(:\d+)?|\[[0-9a-f:]+\](:\d+)?`)
)

// logValues reads a JSON log: every string value that is one DTMF symbol,
// in order (a PIN logged digit by digit), and every other string value but
// random identifiers and addresses, one per line.
func logValues(t *testing.T, log string) (digits, strs string) {
	t.Helper()
	var seq, all strings.Builder
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(key, x)
			}
		case string:
			if len(v) == 1 && strings.Contains("0123456789*#ABCD", v) {
				seq.WriteString(v)
			}
			if !randomKeys.MatchString(key) {
				fmt.Fprintf(&all, "%s=%s\n", key, addrLike.ReplaceAllString(v, "<addr>"))
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		delete(rec, "time")
		walk("", rec)
	}
	return seq.String(), all.String()
}
