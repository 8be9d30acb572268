package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/voxgate/voxgate/audio"
)

// progressHandler rings, sends early media (183 and RTP) and answers when
// told to.
type progressHandler struct {
	progress chan error
	answer   chan struct{}
}

func (h progressHandler) HandleCall(ctx context.Context, c *Call) {
	_ = c.Ringing()
	err := c.Progress(ctx)
	h.progress <- err
	if err != nil {
		c.Reject(480, "Temporarily Unavailable")
		return
	}
	frame := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.answer:
			_ = c.Answer(ctx)
			return
		case <-tick.C:
			_ = c.WritePayload(frame, 160) // early media
		case <-c.Done():
			return
		}
	}
}

// A caller gets 180, then 183 Session Progress with voxgate's SDP answer
// and RTP before the answer; the 200 carries the same SDP. A caller whose
// INVITE had no SDP cannot get early media.
func TestProgressSendsEarlyMedia(t *testing.T) {
	h := progressHandler{progress: make(chan error, 2), answer: make(chan struct{})}
	_, addr := testServer(t, nil, WithHandler(h))
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtpConn.Close()
	offer := strings.Replace(testOffer, "m=audio 40000", fmt.Sprintf("m=audio %d", rtpConn.LocalAddr().(*net.UDPAddr).Port), 1)
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "early1", 1, "Content-Type: application/sdp\n", offer)))
	if err := <-h.progress; err != nil {
		t.Fatal(err)
	}
	got := map[int]*sip.Response{}
	buf := make([]byte, 65535)
	for deadline := time.Now().Add(3 * time.Second); got[183] == nil; {
		_ = c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no 183 (got %v): %v", got, err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if res, ok := m.(*sip.Response); err == nil && ok {
			got[res.StatusCode] = res
		}
	}
	early := got[183]
	if got[180] == nil || early.Reason != "Session Progress" || early.ContentType() == nil || early.ContentType().Value() != "application/sdp" ||
		!strings.Contains(string(early.Body()), "m=audio ") || early.GetHeader("Allow") == nil {
		t.Fatalf("180 %v; 183:\n%s", got[180] != nil, early)
	}
	_ = rtpConn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := rtpConn.ReadFromUDP(buf)
	var pkt rtp.Packet
	if err != nil || pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != 8 {
		t.Fatalf("no PCMA RTP before the answer: %v", err)
	}
	close(h.answer)
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 || string(res.Body()) != string(early.Body()) {
		t.Fatalf("the 200's SDP differs from the 183's:\n%s\n--- 183:\n%s", res.Body(), early.Body())
	}
	tag, _ := res.To().Params.Get("tag")
	etag, _ := early.To().Params.Get("tag")
	if tag != etag {
		t.Errorf("To tag %q in the 200, %q in the 183", tag, etag)
	}

	c2 := newRawClient(t, addr)
	c2.send(guest(request("INVITE", "sip:9196@voxgate", "early2", 1, "", "")))
	if err := <-h.progress; !errors.Is(err, ErrNoEarlyMedia) {
		t.Errorf("Progress on a late offer: %v, want ErrNoEarlyMedia", err)
	}
	if res := c2.final(3 * time.Second); res.StatusCode != 480 {
		t.Errorf("late offer: %d", res.StatusCode)
	}
}

// voxgate calls another voxgate whose call sends early media: DialTrunk
// hands the EarlyMedia leg over on the 183, its packets arrive before the
// answer, and it ends with the call; when the far end refuses after its
// early media, the EarlyMedia ends with the failed dial.
func TestDialTakesEarlyMedia(t *testing.T) {
	for _, answer := range []bool{true, false} {
		t.Run(fmt.Sprintf("answered=%v", answer), func(t *testing.T) {
			h := progressHandler{progress: make(chan error, 1), answer: make(chan struct{})}
			_, addr := testServer(t, func(cfg *Config) {
				f := false
				cfg.Trunks = []TrunkConfig{{Name: "carrier", Registrar: "127.0.0.1:5999", Register: &f, InboundCIDRs: []string{"127.0.0.0/8"}}}
			}, WithHandler(refusingProgress{h, !answer}))
			caller, _ := testServer(t, func(cfg *Config) {
				f := false
				cfg.RTPPorts = "34200-34299"
				cfg.Trunks = []TrunkConfig{{Name: "gw", Registrar: addr, Register: &f}}
			})
			gotEarly := make(chan *EarlyMedia, 1)
			packets := make(chan struct{}, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			type result struct {
				c   *Call
				err error
			}
			done := make(chan result, 1)
			go func() {
				c, err := caller.DialTrunk(ctx, "gw", "4930999", DialOptions{OnEarlyMedia: func(em *EarlyMedia) {
					em.SetPacketHandler(audio.PacketHandlerFunc(func(*audio.Packet) {
						select {
						case packets <- struct{}{}:
						default:
						}
					}))
					gotEarly <- em
				}})
				done <- result{c, err}
			}()
			var em *EarlyMedia
			select {
			case em = <-gotEarly:
			case <-ctx.Done():
				t.Fatal("no early media")
			}
			select {
			case <-packets:
			case <-ctx.Done():
				t.Fatal("no early media packets")
			}
			if em.Codec().Name != "PCMA" && em.Codec().Name != "PCMU" {
				t.Errorf("early media codec %+v", em.Codec())
			}
			close(h.answer)
			r := <-done
			if !answer {
				var rej *Rejection
				if !errors.As(r.err, &rej) || rej.Status != 480 {
					t.Fatalf("dial: %v, want 480", r.err)
				}
				select {
				case <-em.Done():
				case <-time.After(3 * time.Second):
					t.Fatal("the early media outlived the failed dial")
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			select {
			case <-em.Done():
				t.Fatal("the early media ended at the answer")
			default:
			}
			r.c.Hangup(ctx)
			select {
			case <-em.Done():
			case <-time.After(3 * time.Second):
				t.Fatal("the early media outlived the call")
			}
		})
	}
}

// refusingProgress is progressHandler, refusing (480) instead of answering
// when refuse is set.
type refusingProgress struct {
	progressHandler
	refuse bool
}

func (h refusingProgress) HandleCall(ctx context.Context, c *Call) {
	if !h.refuse {
		h.progressHandler.HandleCall(ctx, c)
		return
	}
	_ = c.Progress(ctx)
	h.progress <- nil
	frame := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.answer:
			c.Reject(480, "Temporarily Unavailable")
			return
		case <-tick.C:
			_ = c.WritePayload(frame, 160)
		}
	}
}
