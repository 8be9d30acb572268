package sip

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/audio"
)

// echoHandler answers every call and sends back what it hears; it records
// the calls and the DTMF digits they received.
type echoHandler struct {
	mu     sync.Mutex
	calls  []*Call
	digits string
}

func (h *echoHandler) HandleCall(ctx context.Context, c *Call) {
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	c.OnDTMF(func(d rune) {
		h.mu.Lock()
		h.digits += string(d)
		h.mu.Unlock()
	})
	if err := c.Answer(ctx); err != nil {
		return
	}
	f := audio.Frame{Samples: make([]int16, 0, 960)}
	rd := newFrameReader(c)
	for rd.read(ctx, &f) == nil {
		_ = c.WriteFrame(&f)
	}
}

func (h *echoHandler) snapshot() ([]*Call, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Call(nil), h.calls...), h.digits
}

// toneThrough sends a tone into c for d and returns what came back.
func toneThrough(t *testing.T, c *Call, freq float64, d time.Duration) []int16 {
	t.Helper()
	var got []int16
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Second)
	defer cancel()
	done := make(chan struct{})
	rd := newFrameReader(c)
	go func() {
		defer close(done)
		f := audio.Frame{Samples: make([]int16, 0, 960)}
		for rd.read(ctx, &f) == nil {
			mu.Lock()
			got = append(got, f.Samples...)
			mu.Unlock()
		}
	}()
	tone := audio.Tone{Rate: 8000, Freq: freq, Level: 0.5}
	f := audio.Frame{Rate: 8000, Samples: make([]int16, 160)}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		tone.Fill(f.Samples)
		if err := c.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return got
}

// A call out through a trunk answers the carrier's digest challenge, carries
// audio both ways, sends RFC 4733 DTMF, and hangs up.
func TestDialTrunkWithAuth(t *testing.T) {
	echo := &echoHandler{}
	car, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "33000-33099", Domain: "carrier.test", Codecs: []string{"pcmu", "pcma"}},
		WithLogger(quietLogger()), WithUsers(NewUsers(User{Name: "4930123", Password: "trunk-pw"})), WithHandler(echo))
	if err != nil {
		t.Fatal(err)
	}
	if err := car.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer car.Close()
	gw, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: car.Addrs()[0].String(), Username: "4930123", Password: "trunk-pw", Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gw.DialTrunk(ctx, "carrier", "+15551230001", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := echo.snapshot()
	if len(calls) != 1 || calls[0].Origin().Kind != "user" || calls[0].Dialed() != "+15551230001" {
		t.Fatalf("carrier saw %d calls, origin %+v", len(calls), calls[0].Origin())
	}
	if err := c.SendDTMF("5#"); err != nil {
		t.Fatal(err)
	}
	got := toneThrough(t, c, 700, 2*time.Second)
	secs := audio.ToneSeconds(got, 8000, 700, 0.2)
	if secs < 1.2 {
		t.Fatalf("echo through the trunk call: %.2fs of tone in %d samples", secs, len(got))
	}
	c.Hangup(ctx)
	select {
	case <-calls[0].Done():
	case <-time.After(3 * time.Second):
		t.Fatal("carrier's side did not end after our BYE")
	}
	if _, digits := echo.snapshot(); digits != "5#" {
		t.Fatalf("carrier received DTMF %q, want 5#", digits)
	}
	if gw.Calls() != 0 {
		t.Fatalf("%d calls left at voxgate", gw.Calls())
	}
}

// A wrong trunk password gives the carrier's final answer as a Rejection.
func TestDialTrunkRejected(t *testing.T) {
	car, _ := testServer(t, nil) // no account for 4930123: 407, then 403
	gw, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.Trunks = []TrunkConfig{{Name: "c", Registrar: car.Addrs()[0].String(), Username: "alice", Password: "wrong", Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := gw.DialTrunk(ctx, "c", "100", DialOptions{})
	var r *Rejection
	if err == nil || !asRejection(err, &r) || (r.Status != 403 && r.Status != 407) {
		t.Fatalf("err %v, want a 403/407 rejection", err)
	}
	if _, err := gw.DialTrunk(ctx, "nope", "100", DialOptions{}); err == nil || !strings.Contains(err.Error(), "unknown trunk") {
		t.Fatalf("unknown trunk: %v", err)
	}
}

func asRejection(err error, r **Rejection) bool {
	x, ok := err.(*Rejection)
	*r = x
	return ok
}

// A call from a trunk's network is recognised as that trunk's, without auth;
// a BYE from the far end ends it at voxgate.
func TestInboundFromTrunkCIDR(t *testing.T) {
	echo := &echoHandler{}
	gw, addr := testServer(t, func(cfg *Config) {
		f := false
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: "127.0.0.1:5999", Register: &f, InboundCIDRs: []string{"127.0.0.0/8"}}}
	}, WithHandler(echo))
	caller, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.RTPPorts = "34000-34099"
		cfg.Trunks = []TrunkConfig{{Name: "gw", Registrar: addr, Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := caller.DialTrunk(ctx, "gw", "4930999", DialOptions{CallerID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := echo.snapshot()
	if len(calls) != 1 || calls[0].Origin() != (Origin{Kind: "trunk", Name: "carrier"}) {
		t.Fatalf("origin %+v", calls[0].Origin())
	}
	c.Hangup(ctx)
	select {
	case <-calls[0].Done():
	case <-time.After(3 * time.Second):
		t.Fatal("BYE did not end the call")
	}
	if calls[0].EndReason() != "remote hangup" {
		t.Fatalf("end reason %q", calls[0].EndReason())
	}
	_ = gw
}

func TestFitTransportOverMTU(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1", Port: 5060})
	req.SetTransport("UDP")
	req.SetBody([]byte(strings.Repeat("a=x\r\n", 10)))
	fitTransport(req)
	if req.Transport() != "UDP" {
		t.Fatal("a small request left UDP")
	}
	req.SetBody([]byte(strings.Repeat("a=x\r\n", 300)))
	fitTransport(req)
	if req.Transport() != "TCP" {
		t.Fatalf("a %d-byte request stays on %s", len(req.String()), req.Transport())
	}
	_ = net.IPv4len
}

// A carrier that authenticates (digest) instead of calling from a known
// network: challenged, then recognised as the trunk.
func TestInboundFromTrunkDigest(t *testing.T) {
	echo := &echoHandler{}
	_, addr := testServer(t, func(cfg *Config) {
		f := false
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: "127.0.0.1:5999", Register: &f, InboundUser: "carrier-in", InboundPassword: "in-pw"}}
	}, WithHandler(echo))
	caller, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.RTPPorts = "35000-35099"
		cfg.Trunks = []TrunkConfig{
			{Name: "right", Registrar: addr, Register: &f, Username: "carrier-in", Password: "in-pw"},
			{Name: "wrong", Registrar: addr, Register: &f, Username: "carrier-in", Password: "nope"},
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := caller.DialTrunk(ctx, "wrong", "4930999", DialOptions{}); err == nil {
		t.Fatal("a wrong inbound password was accepted")
	}
	c, err := caller.DialTrunk(ctx, "right", "4930999", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	calls, _ := echo.snapshot()
	if len(calls) != 1 || calls[0].Origin() != (Origin{Kind: "trunk", Name: "carrier"}) {
		t.Fatalf("calls %d, origin %+v", len(calls), calls[0].Origin())
	}
}

// WriteFrame encodes with the call's own codec from the registry: on a
// G.722 call it takes 16 kHz PCM (and refuses 8 kHz), and the tone comes
// back through an echo at the far end.
func TestWriteFrameG722(t *testing.T) {
	echo := &echoHandler{}
	car, err := NewServer(Config{Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "33100-33199", Domain: "carrier.test", Codecs: []string{"g722"}},
		WithLogger(quietLogger()), WithUsers(NewUsers(User{Name: "4930123", Password: "trunk-pw"})), WithHandler(echo))
	if err != nil {
		t.Fatal(err)
	}
	if err := car.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer car.Close()
	gw, _ := testServer(t, func(cfg *Config) {
		f := false
		cfg.Codecs = []string{"g722"}
		cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: car.Addrs()[0].String(), Username: "4930123", Password: "trunk-pw", Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gw.DialTrunk(ctx, "carrier", "100", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	if c.Codec().Name != "G722" {
		t.Fatalf("codec %s, want G722", c.Codec().Name)
	}
	if err := c.WriteFrame(&audio.Frame{Rate: 8000, Samples: make([]int16, 160)}); !errors.Is(err, ErrFrameRate) {
		t.Fatalf("an 8 kHz frame on a G.722 call: %v", err)
	}
	rd := newFrameReader(c)
	var got []int16
	var mu sync.Mutex
	go func() {
		f := audio.Frame{Samples: make([]int16, 0, 960)}
		for rd.read(ctx, &f) == nil {
			mu.Lock()
			got = append(got, f.Samples...)
			mu.Unlock()
		}
	}()
	tone := audio.Tone{Rate: 16000, Freq: 1000, Level: 0.5}
	f := audio.Frame{Rate: 16000, Samples: make([]int16, 320)}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); <-tick.C {
		tone.Fill(f.Samples)
		if err := c.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if secs := audio.ToneSeconds(got, 16000, 1000, 0.2); secs < 1.2 {
		t.Fatalf("the G.722 echo carried the tone %.2f s", secs)
	}
}
