package sip

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// BenchmarkRegister measures the REGISTER path: parse the raw message,
// authenticate the digest, store the binding, build the 200.
func BenchmarkRegister(b *testing.B) {
	s, _ := testServer(b, nil)
	parser := sip.NewParser()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		msg, err := parser.ParseSIP(benchRegister(b, s, i))
		if err != nil {
			b.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetTransport("UDP") // as sipgo's UDP transport does with what it reads
		req.SetSource("127.0.0.1:5099")
		tx := siptest.NewServerTxRecorder(req)
		s.dispatch(req, tx)
		if res := tx.Result(); len(res) != 1 || res[0].StatusCode != 200 {
			b.Fatalf("got %v", res)
		}
		tx.Terminate()
	}
}

// benchRegister is the i-th digest REGISTER of alice, answering a fresh
// challenge of its own (a replayed one is refused).
func benchRegister(b testing.TB, s *Server, i int) []byte {
	ch := `Digest realm="voxgate", nonce="` + s.auth.nonces.issue() + `", algorithm=MD5, qop="auth"`
	auth := digestHeader(b, ch, "REGISTER", "sip:voxgate", "alice", "alice-secret")
	raw := request("REGISTER", "sip:voxgate", "bench", 1, "Authorization: "+auth+"\nExpires: 600\n", "")
	raw = strings.Replace(raw, "To: <sip:voxgate>", "To: <sip:alice@voxgate>", 1)
	raw = strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
	raw = fillPort(raw, 5099)
	return []byte(strings.Replace(raw, "branch=z9hG4bKbench1", fmt.Sprintf("branch=z9hG4bKb%d", i), 1))
}

// BenchmarkRegisterServer is the server's side of a digest REGISTER only:
// the read filter's check of the datagram, parsing the request and
// handling it (digest check, location update, the 200). Building the
// client's request and checking the answer are outside the timer, so the
// figure is voxgate's CPU and allocations per REGISTER, but for the socket
// and sipgo's transaction layer: BenchmarkE2ESippRegister's allocs/request
// counts the whole path.
func BenchmarkRegisterServer(b *testing.B) {
	s, _ := testServer(b, nil)
	parser := sip.NewParser()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		data := benchRegister(b, s, i)
		b.StartTimer()
		if out, _ := s.filter.filter(sip.TransportReadProps{Transport: "UDP"}, data); len(out) == 0 {
			b.Fatal("the read filter refused the REGISTER")
		}
		msg, err := parser.ParseSIP(data)
		if err != nil {
			b.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetTransport("UDP") // as sipgo's UDP transport does with what it reads
		req.SetSource("127.0.0.1:5099")
		tx := siptest.NewServerTxRecorder(req)
		s.dispatch(req, tx)
		b.StopTimer()
		if res := tx.Result(); len(res) != 1 || res[0].StatusCode != 200 {
			b.Fatalf("got %v", res)
		}
		tx.Terminate()
		b.StartTimer()
	}
}

// BenchmarkRegisterSipgo is sipgo's own part of BenchmarkRegisterServer,
// timed the same way: parsing the REGISTER, its server transaction, and a
// bare 200 built from the request (NewResponseFromRequest) and sent through
// the transaction. What BenchmarkRegisterServer costs beyond it is voxgate's.
func BenchmarkRegisterSipgo(b *testing.B) {
	s, _ := testServer(b, nil)
	parser := sip.NewParser()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		data := benchRegister(b, s, i)
		b.StartTimer()
		msg, err := parser.ParseSIP(data)
		if err != nil {
			b.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetTransport("UDP") // as sipgo's UDP transport does with what it reads
		req.SetSource("127.0.0.1:5099")
		tx := siptest.NewServerTxRecorder(req)
		if err := tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		tx.Terminate()
		b.StartTimer()
	}
}

// BenchmarkInviteAnswer measures a whole call set-up and tear-down over
// loopback UDP between two voxgate servers: INVITE, 407 challenge answered,
// SDP offer/answer, RTP sockets on both sides, 200, ACK, BYE, 200. One
// operation is one call, both ends' CPU included.
func BenchmarkInviteAnswer(b *testing.B) {
	echo := &answerOnly{}
	gw, addr := testServer(b, nil, WithHandler(echo))
	caller, _ := testServer(b, func(cfg *Config) {
		f := false
		cfg.RTPPorts = "36000-36999"
		cfg.Trunks = []TrunkConfig{{Name: "gw", Registrar: addr, Username: "alice", Password: "alice-secret", Register: &f}}
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := caller.DialTrunk(ctx, "gw", "9196", DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c.Hangup(ctx)
	}
	b.StopTimer()
	_ = gw
}

type answerOnly struct{}

func (answerOnly) HandleCall(ctx context.Context, c *Call) {
	if c.Answer(ctx) == nil {
		<-c.Done()
	}
}

// BenchmarkRegisterHeld counts the heap held per REGISTER in flight: digest
// REGISTERs (challenge, then the answer) over loopback UDP to a running
// server, as a phone sends them; after the last answer, with the server's
// transactions still alive (Timer J), the heap in use over the baseline is
// divided by the REGISTERs. The figure bounds what a flood costs.
func BenchmarkRegisterHeld(b *testing.B) {
	s, addr := testServer(b, func(c *Config) { c.Guard.SlowAfter, c.Guard.BanAfter = 1<<30, 1<<30 })
	c := newRawClient(b, addr)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("held%d", i)
		msg := func(cseq int, auth string) string {
			m := request("REGISTER", "sip:voxgate", id, cseq, auth+"Expires: 600\n", "")
			m = strings.Replace(m, "From: <sip:alice@voxgate>", "From: <sip:alice@voxgate>", 1)
			return strings.Replace(m, "To: <sip:voxgate>", "To: <sip:alice@voxgate>", 1)
		}
		c.send(msg(1, ""))
		res := c.final(3 * time.Second)
		if res.StatusCode != 401 {
			b.Fatalf("challenge: %d", res.StatusCode)
		}
		ch := res.GetHeader("WWW-Authenticate").Value()
		c.send(msg(2, "Authorization: "+digestHeader(b, ch, "REGISTER", "sip:voxgate", "alice", "alice-secret")+"\n"))
		if res := c.final(3 * time.Second); res.StatusCode != 200 {
			b.Fatalf("register: %d %s", res.StatusCode, res.Reason)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(int64(ms.HeapInuse)-int64(base))/float64(b.N), "B-held/register")
	_ = s
}
