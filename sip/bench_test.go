package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// BenchmarkRegister measures the REGISTER path: parse the raw message,
// authenticate the digest, store the binding, build the 200.
func BenchmarkRegister(b *testing.B) {
	s, _ := testServer(b, nil)
	// Each REGISTER answers its own challenge (a replayed one is refused).
	register := func() string {
		ch := `Digest realm="voxgate", nonce="` + s.auth.nonces.issue() + `", algorithm=MD5, qop="auth"`
		auth := digestHeader(b, ch, "REGISTER", "sip:voxgate", "alice", "alice-secret")
		raw := request("REGISTER", "sip:voxgate", "bench", 1, "Authorization: "+auth+"\nExpires: 600\n", "")
		raw = strings.Replace(raw, "To: <sip:voxgate>", "To: <sip:alice@voxgate>", 1)
		raw = strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
		return strings.ReplaceAll(raw, "PORT", "5099")
	}
	parser := sip.NewParser()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		msg, err := parser.ParseSIP([]byte(strings.Replace(register(), "branch=z9hG4bKbench1", fmt.Sprintf("branch=z9hG4bKb%d", i), 1)))
		if err != nil {
			b.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetSource("127.0.0.1:5099")
		tx := siptest.NewServerTxRecorder(req)
		s.dispatch(req, tx)
		if res := tx.Result(); len(res) != 1 || res[0].StatusCode != 200 {
			b.Fatalf("got %v", res)
		}
		tx.Terminate()
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
