package peertest

import (
	"context"
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
	// Host is the address it listens on: 127.0.0.1, or its namespace's.
	Host string
	// Password is its requirepass ("" on 127.0.0.1): Redis refuses
	// clients from other addresses without one (protected mode).
	Password string
	ns       *Netns
	dir      string
	cmd      *exec.Cmd
	out      *SyncBuffer
}

// StartRedis starts redis-server (Debian redis-server) and waits until it
// takes connections; it is killed when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	Need(t, "redis-server")
	return startRedis(t, &Redis{t: t, Port: FreeTCPPort(t), Host: "127.0.0.1", dir: t.TempDir()})
}

// StartRedisIn starts redis-server inside the namespace ns, on its address
// and the standard port 6379, with a password.
func StartRedisIn(t testing.TB, ns *Netns) *Redis {
	t.Helper()
	Need(t, "redis-server")
	return startRedis(t, &Redis{t: t, Port: 6379, Host: ns.IP, Password: "vg-test-redis", ns: ns, dir: t.TempDir()})
}

func startRedis(t testing.TB, r *Redis) *Redis {
	t.Helper()
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
func (r *Redis) URL() string {
	if r.Password != "" {
		return fmt.Sprintf("redis://:%s@%s/0", r.Password, r.Addr())
	}
	return fmt.Sprintf("redis://%s/0", r.Addr())
}

// Addr is its host:port.
func (r *Redis) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// Start starts the server (again, after Stop) and waits for it.
func (r *Redis) Start() {
	r.t.Helper()
	if r.out == nil {
		r.out = &SyncBuffer{}
	}
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", r.Host,
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}
	if r.Password != "" {
		args = append(args, "--requirepass", r.Password)
	}
	if r.ns != nil {
		r.cmd = r.ns.Command(context.Background(), "redis-server", args...)
	} else {
		r.cmd = exec.Command("redis-server", args...)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c net.Conn
		var err error
		if r.ns != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err = r.ns.DialContext(ctx, "tcp", r.Addr())
			cancel()
		} else {
			c, err = net.DialTimeout("tcp", r.Addr(), time.Second)
		}
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
