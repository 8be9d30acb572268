package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// answerOnCue answers each call when the test says so, and reports what
// Answer returned.
type answerOnCue struct {
	calls  chan *Call
	cue    chan struct{}
	answer chan error
}

func (a answerOnCue) HandleCall(ctx context.Context, c *Call) {
	_ = c.Ringing()
	a.calls <- c
	<-a.cue
	a.answer <- c.Answer(ctx)
	<-c.Done()
}

// A CANCEL that races the callee's answer (RFC 3261 9.2, 15): whichever
// wins, the INVITE gets one final answer (200 or 487), the CANCEL 200 (or
// 481 once the INVITE's transaction is over), a 200 can be ACKed and hung
// up, and no call is left behind. The order is varied from CANCEL well
// first to the answer well first.
func TestCancelRacingAnswer(t *testing.T) {
	h := answerOnCue{calls: make(chan *Call, 1), cue: make(chan struct{}), answer: make(chan error, 1)}
	s, addr := testServer(t, nil, WithHandler(h))
	wins := map[int]int{}
	for i, lead := range []time.Duration{-2 * time.Millisecond, -500 * time.Microsecond, 0, 0, 0, 500 * time.Microsecond, 2 * time.Millisecond, 5 * time.Millisecond} {
		t.Run(fmt.Sprintf("%d/answer%+v", i, lead), func(t *testing.T) {
			c := newRawClient(t, addr)
			id := fmt.Sprintf("race%d", i)
			invite := guest(request("INVITE", "sip:9196@voxgate", id, 1, "Content-Type: application/sdp\n", testOffer))
			c.send(invite)
			var call *Call
			select {
			case call = <-h.calls:
			case <-time.After(3 * time.Second):
				t.Fatal("no call")
			}
			cancelMsg := strings.Replace(strings.Replace(strings.SplitN(invite, "\nContent-Type", 2)[0], "INVITE sip:", "CANCEL sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1) + "\nContent-Length: 0\n\n"
			if lead < 0 { // the answer first
				h.cue <- struct{}{}
				time.Sleep(-lead)
				c.send(cancelMsg)
			} else {
				go func() { time.Sleep(lead); h.cue <- struct{}{} }()
				c.send(cancelMsg)
			}
			got := map[string]int{}
			var ok200 string
			for got["CANCEL"] == 0 || got["INVITE"] == 0 {
				res := c.final(3 * time.Second)
				m := string(res.CSeq().MethodName)
				if got[m] != 0 && got[m] != res.StatusCode {
					t.Fatalf("%s answered %d, then %d", m, got[m], res.StatusCode)
				}
				got[m] = res.StatusCode
				if m == "INVITE" && res.StatusCode == 200 {
					ok200, _ = res.To().Params.Get("tag")
				}
			}
			if st := got["CANCEL"]; st != 200 && st != 481 {
				t.Fatalf("CANCEL: %d", st)
			}
			switch got["INVITE"] {
			case 487:
				if err := <-h.answer; err == nil {
					t.Fatal("INVITE 487 but Answer succeeded")
				}
			case 200: // ACK at once, as a phone does, then hang up
				inDialog := func(method string, cseq int, branch string) string {
					m := guest(request(method, "sip:9196@voxgate", id, cseq, "", ""))
					m = strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+ok200, 1)
					return strings.Replace(m, "branch=z9hG4bK"+id, "branch=z9hG4bK"+branch+id, 1)
				}
				c.send(inDialog("ACK", 1, "ack"))
				if err := <-h.answer; err != nil {
					t.Fatalf("INVITE 200 but Answer said %v", err)
				}
				c.send(inDialog("BYE", 2, "bye"))
				for {
					res := c.final(3 * time.Second)
					if res.CSeq().MethodName == "BYE" {
						if res.StatusCode != 200 {
							t.Fatalf("BYE: %d", res.StatusCode)
						}
						break
					}
				}
			default:
				t.Fatalf("INVITE: %d", got["INVITE"])
			}
			wins[got["INVITE"]]++
			select {
			case <-call.Done():
			case <-time.After(3 * time.Second):
				t.Fatal("the call did not end")
			}
		})
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.Calls() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Calls(); n != 0 {
		t.Fatalf("%d calls left", n)
	}
	t.Logf("INVITE answers: %v", wins)
}
