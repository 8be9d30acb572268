package peertest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server the test started on a free loopback port, with
// its own directory and no persistence (a restart loses every key, as a
// failover to an empty replica would).
type Redis struct {
	t    testing.TB
	Port int
	dir  string
	cmd  *exec.Cmd
	out  *SyncBuffer
}

// StartRedis starts redis-server (Debian redis-server) and waits until it
// takes connections; it is killed when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	Need(t, "redis-server")
	r := &Redis{t: t, Port: FreeTCPPort(t), dir: t.TempDir()}
	r.Start()
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", r.out.String())
		}
	})
	return r
}

// URL is the address for cluster.redis.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts the server (again, after Stop) and waits for it.
func (r *Redis) Start() {
	r.t.Helper()
	if r.out == nil {
		r.out = &SyncBuffer{}
	}
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not take connections: %v\n%s", err, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: as if it crashed) and waits for it.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// FreeTCPPort returns a loopback TCP port nobody listens on.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
