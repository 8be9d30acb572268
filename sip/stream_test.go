package sip

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tcpClient talks SIP over one TCP connection with hand-written messages.
type tcpClient struct {
	t    testing.TB
	conn net.Conn
	rd   *bufio.Reader
}

func newTCPClient(t testing.TB, addr string) *tcpClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{t: t, conn: c, rd: bufio.NewReader(c)}
}

func (c *tcpClient) send(msg string) {
	c.t.Helper()
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	msg = strings.ReplaceAll(msg, "SIP/2.0/UDP", "SIP/2.0/TCP")
	msg = fillPort(msg, c.conn.LocalAddr().(*net.TCPAddr).Port)
	if _, err := io.WriteString(c.conn, msg); err != nil {
		c.t.Fatal(err)
	}
}

// reply is a response as the test reads it: a 400 may echo headers too
// broken to parse, so only the status line and Call-ID are taken.
type reply struct {
	StatusCode int
	Reason     string
	CallID     string
}

// next reads one message off the stream (framed by Content-Length).
func (c *tcpClient) next(timeout time.Duration) (reply, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var r reply
	length := 0
	for first := true; ; first = false {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			return r, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if first {
			f := strings.SplitN(line, " ", 3)
			if len(f) < 3 || f[0] != "SIP/2.0" {
				return r, fmt.Errorf("not a response: %q", line)
			}
			r.StatusCode, _ = strconv.Atoi(f[1])
			r.Reason = f[2]
			continue
		}
		name, v, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length", "l":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		case "call-id", "i":
			r.CallID = strings.TrimSpace(v)
		}
	}
	_, err := io.ReadFull(c.rd, make([]byte, length))
	return r, err
}

// final waits for a final response.
func (c *tcpClient) final(timeout time.Duration) reply {
	c.t.Helper()
	for {
		res, err := c.next(timeout)
		if err != nil {
			c.t.Fatalf("no final response: %v", err)
		}
		if res.StatusCode >= 200 {
			return res
		}
	}
}

// closed reports whether the server closed the connection within timeout.
func (c *tcpClient) closed(timeout time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	_, err := c.rd.ReadByte()
	return err == io.EOF || (err != nil && !isTimeoutErr(err))
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func tcpServer(t *testing.T, mutate func(*Config)) string {
	t.Helper()
	s, _ := testServer(t, func(c *Config) {
		c.Listen = []Listener{{Transport: "tcp", Addr: "127.0.0.1:0"}}
		if mutate != nil {
			mutate(c)
		}
	})
	return s.Addrs()[0].String()
}

// Over TCP, a request that lacks a mandatory header, does not parse, or
// has a CSeq for another method is answered 400 with a reason, like over
// UDP, and the connection goes on: the next request is answered.
func TestTCPMalformedAnswered(t *testing.T) {
	addr := tcpServer(t, nil)
	c := newTCPClient(t, addr)
	ok := request("OPTIONS", "sip:voxgate@127.0.0.1", "ok1", 1, "", "")
	next := 1
	for _, m := range []struct{ name, msg, reason string }{
		{"no Call-ID", strings.Replace(ok, "Call-ID: ok1\n", "", 1), "missing Call-ID"},
		{"no From", strings.Replace(ok, "From: <sip:alice@voxgate>;tag=ftok1\n", "", 1), "missing From"},
		{"no To", strings.Replace(ok, "To: <sip:voxgate@127.0.0.1>\n", "", 1), "missing To"},
		{"CSeq method", strings.Replace(ok, "CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1), "CSeq method"},
		{"unterminated quote", strings.Replace(ok, "From: <sip:alice@voxgate>", `From: "alice <sip:alice@voxgate>`, 1), ""},
	} {
		c.send(m.msg)
		res := c.final(3 * time.Second)
		if res.StatusCode != 400 || !strings.Contains(res.Reason, m.reason) {
			t.Errorf("%s: %d %s, want 400 (%s)", m.name, res.StatusCode, res.Reason, m.reason)
		}
		// The same connection still works. Each request is a new
		// transaction (a new CSeq, so a new branch), as a client sends it:
		// the same branch again would be a retransmission, which the
		// transaction layer may absorb while the first one is still alive.
		next++
		c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "ok1", next, "", ""))
		if res := c.final(3 * time.Second); res.StatusCode != 200 || res.CallID != "ok1" {
			t.Fatalf("after %s: %d %s", m.name, res.StatusCode, res.Reason)
		}
	}
}

// A message split over many writes, and two in one write, are framed by
// Content-Length and both answered.
func TestTCPFraming(t *testing.T) {
	addr := tcpServer(t, nil)
	c := newTCPClient(t, addr)
	a := request("OPTIONS", "sip:voxgate@127.0.0.1", "f1", 1, "", "")
	b := request("OPTIONS", "sip:voxgate@127.0.0.1", "f2", 1, "", "")
	c.send(a[:20])
	time.Sleep(50 * time.Millisecond)
	c.send(a[20:] + b)
	got := map[string]int{} // answered in either order: sipgo handles requests concurrently
	for range 2 {
		res := c.final(3 * time.Second)
		got[res.CallID] = res.StatusCode
	}
	if got["f1"] != 200 || got["f2"] != 200 {
		t.Fatalf("answers %v, want 200 for f1 and f2", got)
	}
}

// An idle connection, and one whose headers never end, are closed.
func TestTCPTimeouts(t *testing.T) {
	addr := tcpServer(t, func(c *Config) {
		c.Stream.IdleTimeout = 300 * time.Millisecond
		c.Stream.HeaderTimeout = 300 * time.Millisecond
	})
	idle := newTCPClient(t, addr)
	if !idle.closed(3 * time.Second) {
		t.Error("an idle connection stays open")
	}
	slow := newTCPClient(t, addr)
	slow.send("OPTIONS sip:voxgate@127.0.0.1 SIP/2.0\nVia: SIP/2.0/TCP 127.0.0.1:PORT;branch=z9hG4bKslow\n")
	if !slow.closed(3 * time.Second) {
		t.Error("a connection whose headers never end stays open")
	}
}

// Connections over the per-source cap are refused at once; closing one
// makes room again.
func TestTCPConnectionCap(t *testing.T) {
	addr := tcpServer(t, func(c *Config) { c.Stream.MaxPerSource = 2 })
	a, b := newTCPClient(t, addr), newTCPClient(t, addr)
	for _, c := range []*tcpClient{a, b} { // both accepted and served
		c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "cap", 1, "", ""))
		if res := c.final(3 * time.Second); res.StatusCode != 200 {
			t.Fatalf("%d", res.StatusCode)
		}
	}
	third := newTCPClient(t, addr)
	if !third.closed(3 * time.Second) {
		t.Fatal("a third connection from one address was not refused")
	}
	a.conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := newTCPClient(t, addr)
		c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "again", 1, "", ""))
		if res, err := c.next(time.Second); err == nil && res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no room after a connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With its file descriptors exhausted, the server keeps accepting once
// some are free again, and says why it could not. The server runs in a
// child process with RLIMIT_NOFILE lowered.
func TestTCPSurvivesFDExhaustion(t *testing.T) {
	if os.Getenv("VOXGATE_FD_CHILD") == "1" {
		fdChild()
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTCPSurvivesFDExhaustion$")
	cmd.Env = append(os.Environ(), "VOXGATE_FD_CHILD=1")
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	logs := &syncWriter{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v\n%s", err, logs.String())
	}
	addr := strings.TrimSpace(line)
	// Open connections until the child's descriptors run out (its limit is
	// 64), then some more that wait in the backlog.
	var conns []net.Conn
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	// Meanwhile a call's RTP ports cannot be had: the error says why.
	_, _ = io.WriteString(stdin, "ports\n")
	if why, _ := out.ReadString('\n'); !strings.Contains(why, "out of file descriptors") {
		t.Errorf("RTP ports with no descriptors left: %q", why)
	}
	for _, c := range conns {
		c.Close()
	}
	c := newTCPClient(t, addr)
	c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "fd", 1, "", ""))
	if res := c.final(10 * time.Second); res.StatusCode != 200 {
		t.Fatalf("after fd exhaustion: %d", res.StatusCode)
	}
	if !strings.Contains(logs.String(), "out of file descriptors") {
		t.Errorf("the child did not log the fd exhaustion:\n%s", logs.String())
	}
}

// fdChild serves SIP over TCP with at most 64 open files and prints its
// address; for each line on its input it takes RTP ports until that fails
// and prints why.
func fdChild() {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(1)
	}
	cfg := Config{Listen: []Listener{{Transport: "tcp", Addr: "127.0.0.1:0"}}, RTPPorts: "34000-34099", Codecs: []string{"pcmu"}}
	s, err := NewServer(cfg, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	fmt.Println(s.Addrs()[0].String())
	in := bufio.NewReader(os.Stdin)
	for {
		if _, err := in.ReadString('\n'); err != nil {
			os.Exit(0)
		}
		pool := newPortPool(35000, 35999)
		var err error
		for err == nil {
			_, _, _, err = pool.listen(netip.MustParseAddr("127.0.0.1"), nil, nil)
		}
		fmt.Println(err)
	}
}

// The stream framing takes any bytes without panicking, and hands sipgo
// only keep-alives and messages that pass the checks.
func FuzzStreamFraming(f *testing.F) {
	ok := request("OPTIONS", "sip:voxgate@127.0.0.1", "fz", 1, "", "")
	f.Add([]byte(strings.ReplaceAll(ok, "\n", "\r\n")))
	f.Add([]byte("\r\n\r\n" + strings.ReplaceAll(ok, "\n", "\r\n") + "garbage"))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n"))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nl: 99999999\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		cfg := StreamConfig{IdleTimeout: time.Second, HeaderTimeout: time.Second}
		cfg.defaults()
		c := &messageConn{Conn: server, cfg: cfg, log: quietLogger(), counters: newCounters(), parser: sip.NewParser()}
		go func() {
			_, _ = client.Write(data)
			client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }() // the 400s
		var got []byte
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		c.Close()
		if len(got) > len(data) {
			t.Fatalf("handed on %d bytes of %d", len(got), len(data))
		}
	})
}
