package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// carrier starts a second voxgate acting as a carrier's registrar on addr,
// with the account the trunk uses.
func carrier(t *testing.T, addr string) *Server {
	t.Helper()
	cfg := Config{
		Listen:     []Listener{{Transport: "udp", Addr: addr}},
		RTPPorts:   "32000-32099",
		MinExpires: 1,
		Domain:     "carrier.test",
	}
	s, err := NewServer(cfg, WithLogger(quietLogger()), WithUsers(NewUsers(User{Name: "4930123", Password: "trunk-pw"})))
	if err != nil {
		t.Fatal(err)
	}
	var startErr error
	for i := 0; i < 50; i++ { // the port of a just-closed carrier may linger briefly
		if startErr = s.Start(context.Background()); startErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	return s
}

func waitBinding(t *testing.T, s *Server, user string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(s.Bindings(user)) > 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// voxgate registers to a trunk that demands digest auth, refreshes, and
// registers again after the carrier restarts (losing its bindings).
func TestTrunkRegistersAndRecovers(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	carrierAddr := c.LocalAddr().String()
	c.Close()
	car := carrier(t, carrierAddr)
	defer func() { car.Close() }()

	var seen trunkChanges
	gw, _ := testServer(t, func(cfg *Config) {
		cfg.Trunks = []TrunkConfig{{
			Name: "carrier", Registrar: "sip:" + carrierAddr, Username: "4930123", Password: "trunk-pw",
			Expires: 2, RetryMax: 500 * time.Millisecond,
		}}
	}, WithTrunkObserver(seen.add))
	if !waitBinding(t, car, "4930123", 5*time.Second) {
		t.Fatalf("voxgate did not register to the carrier: %+v", gw.TrunkStates())
	}
	b := car.Bindings("4930123")[0]
	if want := fmt.Sprintf(":%d", gw.localPort("udp")); !strings.Contains(b.Contact, want) || !strings.Contains(b.Source, want) {
		t.Errorf("contact %q / source %q: not voxgate's SIP port %s", b.Contact, b.Source, want)
	}
	st := gw.TrunkStates()[0]
	if !st.Registered {
		t.Fatalf("state %+v", st)
	}
	attempts := st.Attempts
	time.Sleep(2500 * time.Millisecond)
	if gw.TrunkStates()[0].Attempts <= attempts {
		t.Fatal("registration was not refreshed before it expired")
	}

	car.Close()
	time.Sleep(2500 * time.Millisecond) // the registration lapses while the carrier is down
	if gw.TrunkStates()[0].Registered {
		t.Errorf("trunk still shown registered while the carrier is down: %+v", gw.TrunkStates()[0])
	}
	car = carrier(t, carrierAddr)
	if !waitBinding(t, car, "4930123", 5*time.Second) {
		t.Fatalf("voxgate did not register again after the carrier restarted: %+v", gw.TrunkStates())
	}
	// The carrier may have bound a REGISTER whose answer reached a transaction
	// that had already given up; the next attempt is then answered.
	deadline := time.Now().Add(5 * time.Second)
	for !gw.TrunkStates()[0].Registered && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !gw.TrunkStates()[0].Registered {
		t.Fatalf("state after recovery %+v", gw.TrunkStates()[0])
	}
	// The observer heard each change, not each refresh: up, down, up.
	if got := seen.registered(); !strings.HasPrefix(got, "up,down,") || !strings.HasSuffix(got, ",up") || strings.Contains(got, "up,up") || strings.Contains(got, "down,down") {
		t.Errorf("observer saw %s, want up,down,…,up with no repeats", got)
	}
}

// trunkChanges records what a trunk observer is told.
type trunkChanges struct {
	mu     sync.Mutex
	states []TrunkState
}

func (c *trunkChanges) add(st TrunkState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states = append(c.states, st)
}

// registered is the sequence of Registered values, as up/down.
func (c *trunkChanges) registered() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, st := range c.states {
		if st.Registered {
			out = append(out, "up")
		} else {
			out = append(out, "down")
		}
	}
	return strings.Join(out, ",")
}

// A wrong trunk password shows as a failed registration, retried.
func TestTrunkWrongPassword(t *testing.T) {
	car := carrier(t, "127.0.0.1:0")
	defer car.Close()
	addr := car.Addrs()[0].String()
	var seen trunkChanges
	gw, _ := testServer(t, func(cfg *Config) {
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: addr, Username: "4930123", Password: "wrong", Expires: 60, RetryMax: 200 * time.Millisecond}}
	}, WithTrunkObserver(seen.add))
	deadline := time.Now().Add(5 * time.Second)
	for gw.TrunkStates()[0].Attempts < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	st := gw.TrunkStates()[0]
	if st.Registered || st.Attempts < 2 || st.LastError == "" {
		t.Fatalf("state %+v", st)
	}
	if len(car.Bindings("4930123")) != 0 {
		t.Fatal("registered with a wrong password")
	}
	// The first failure is news (with its error); the retries are not.
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.states) != 1 || seen.states[0].Registered || seen.states[0].LastError == "" {
		t.Errorf("observer saw %+v, want one failed state", seen.states)
	}
}
