package sip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// The captures from real clients live in the repository's top-level
// testdata (see its README for client, version and command of each file).
const (
	capturedSIP = "../testdata/sip"
	capturedSDP = "../testdata/sdp"
)

// captureServer starts a server that takes every codec voxgate has, or the
// ones given, and whose handler answers 9196 and refuses other numbers with
// 404, as a dialplan with one echo number would.
func captureServer(t *testing.T, codecs ...string) (*Server, string) {
	t.Helper()
	h := HandlerFunc(func(ctx context.Context, c *Call) {
		if c.Dialed() != "9196" {
			c.Reject(RejectNotFound.Status, RejectNotFound.Reason)
			return
		}
		_ = c.Answer(ctx)
	})
	return testServer(t, func(c *Config) {
		c.Codecs = codecs
		if len(c.Codecs) == 0 {
			c.Codecs = []string{"opus", "g722", "pcmu", "pcma"}
		}
	}, WithHandler(h))
}

// answered is what an SDP answer chose for its audio stream.
type answered struct {
	codec string // rtpmap encoding of the first format: "opus/48000/2"
	pt    int
	dtmf  int // payload type of telephone-event, 0 if none
}

func (a answered) String() string {
	return fmt.Sprintf("%s on %d, events on %d", a.codec, a.pt, a.dtmf)
}

// checkAnswer compares what the SDP of a 200 took with want.
func checkAnswer(t *testing.T, res *sip.Response, want answered) {
	t.Helper()
	got := parseAnswer(t, res.Body())
	if !strings.EqualFold(got.codec, want.codec) || got.pt != want.pt || got.dtmf != want.dtmf {
		t.Errorf("answer took %v, want %v", got, want)
	}
}

// parseAnswer reads the audio stream of voxgate's answer: exactly one
// payload type for the audio, and telephone-event if taken.
func parseAnswer(t *testing.T, body []byte) answered {
	t.Helper()
	var s sdp.SessionDescription
	if err := s.UnmarshalString(string(body)); err != nil {
		t.Fatalf("voxgate's answer does not parse: %v\n%s", err, body)
	}
	var a answered
	for _, md := range s.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		rtpmap := map[string]string{}
		for _, at := range md.Attributes {
			if at.Key == "rtpmap" {
				pt, enc, _ := strings.Cut(at.Value, " ")
				rtpmap[pt] = enc
			}
		}
		for _, f := range md.MediaName.Formats {
			pt, _ := strconv.Atoi(f)
			switch enc := rtpmap[f]; {
			case strings.HasPrefix(strings.ToLower(enc), "telephone-event/"):
				a.dtmf = pt
			case a.codec != "":
				t.Fatalf("the answer keeps more than one codec:\n%s", body)
			default:
				a.codec, a.pt = enc, pt
			}
		}
		return a
	}
	t.Fatalf("no audio stream in the answer:\n%s", body)
	return a
}

// viaSentBy matches the sent-by of the first Via header.
var viaSentBy = regexp.MustCompile(`(?m)^(Via:[ \t]*SIP/2\.0/UDP[ \t]+)([^;\r\n]+)`)

// sendCaptured sends a captured request from c. The first Via's sent-by is
// the one thing changed: it names the client's address at capture time, and
// a response goes there when the Via has no rport (sipp's do not), so it
// is pointed at c. Everything else, body and Content-Length included, is
// sent as captured.
func sendCaptured(t *testing.T, c *rawClient, msg []byte) *sip.Request {
	t.Helper()
	loc := viaSentBy.FindSubmatchIndex(msg)
	if loc == nil {
		t.Fatalf("no UDP Via in\n%s", msg)
	}
	out := slices.Concat(msg[:loc[4]], []byte(c.conn.LocalAddr().String()), msg[loc[5]:])
	if _, err := c.conn.WriteToUDP(out, c.srv); err != nil {
		t.Fatal(err)
	}
	parsed, err := sip.ParseMessage(out)
	if err != nil {
		t.Fatalf("a captured request does not parse: %v", err)
	}
	return parsed.(*sip.Request)
}

// finishInvite does what the caller does after a final answer to invite:
// ACK a failure in its transaction (RFC 3261 17.1.1.3); ACK a 200 and hang
// up with BYE, then wait until the server has let the call go, so that its
// Close has nothing left to tear down.
func finishInvite(t *testing.T, s *Server, c *rawClient, invite *sip.Request, res *sip.Response) {
	t.Helper()
	seq := invite.CSeq().SeqNo
	msg := func(method, target, via string, n uint32) []byte {
		return fmt.Appendf(nil, "%s %s SIP/2.0\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"+
			"CSeq: %d %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			method, target, via, invite.From().Value(), res.To().Value(), invite.CallID().Value(), n, method)
	}
	send := func(m []byte) {
		if _, err := c.conn.WriteToUDP(m, c.srv); err != nil {
			t.Fatal(err)
		}
	}
	if res.StatusCode >= 300 {
		send(msg("ACK", invite.Recipient.String(), invite.Via().Value(), seq))
		return
	}
	target := invite.Recipient.String()
	if ct := res.Contact(); ct != nil {
		target = ct.Address.String()
	}
	via := func(method string) string {
		return fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK%s%s;rport", c.conn.LocalAddr(), strings.ToLower(method), invite.CallID().Value())
	}
	send(msg("ACK", target, via("ACK"), seq))
	send(msg("BYE", target, via("BYE"), seq+1))
	for {
		bye := c.final(3 * time.Second)
		if bye.CSeq().MethodName != sip.BYE {
			continue // a copy of the 200 sent before the ACK arrived
		}
		if bye.StatusCode != 200 {
			t.Fatalf("BYE: %d %s", bye.StatusCode, bye.Reason)
		}
		break
	}
	for deadline := time.Now().Add(2 * time.Second); s.Calls() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still up after BYE", s.Calls())
		}
	}
}

// Every request captured from a real client gets the answer it should from
// a running server: a REGISTER without credentials a digest challenge, an
// INVITE to the echo number a 200 whose SDP takes the codec we expect, an
// INVITE to a number nobody serves a 404. A capture added to testdata
// without a row here fails the test.
func TestCapturedRequests(t *testing.T) {
	cases := map[string]struct {
		status int
		answer answered // for a 200
	}{
		"baresip-register.sip":     {status: 401},
		"sipp-register.sip":        {status: 401},
		"baresip-invite-pcmu.sip":  {200, answered{"PCMU/8000", 0, 101}},
		"baresip-invite-opus.sip":  {200, answered{"opus/48000/2", 96, 101}}, // baresip's dynamic type, kept
		"baresip-invite-g722.sip":  {200, answered{"G722/8000", 9, 101}},
		"baresip-invite-all.sip":   {200, answered{"PCMU/8000", 0, 101}}, // the offerer's order wins
		"sipp-uac-invite.sip":      {status: 404},                        // sipp dials "service"
		"sipp-uac-pcap-invite.sip": {200, answered{"PCMA/8000", 8, 101}},
	}
	files, err := filepath.Glob(filepath.Join(capturedSIP, "*.sip"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", capturedSIP, err)
	}
	srv, addr := captureServer(t)
	for _, p := range files {
		name := filepath.Base(p)
		t.Run(strings.TrimSuffix(name, ".sip"), func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatalf("%s has no expected answer in this table", name)
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c := newRawClient(t, addr)
			req := sendCaptured(t, c, raw)
			res := c.final(3 * time.Second)
			if res.StatusCode != want.status {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, want.status)
			}
			switch res.StatusCode {
			case 401:
				h := res.GetHeader("WWW-Authenticate")
				if h == nil || !strings.HasPrefix(h.Value(), "Digest ") || !strings.Contains(h.Value(), "nonce=") {
					t.Fatalf("401 without a digest challenge:\n%s", res)
				}
			case 200:
				checkAnswer(t, res, want.answer)
			}
			if req.IsInvite() {
				finishInvite(t, srv, c, req, res)
			}
		})
	}
}

// Every captured SDP, offered in an INVITE to the echo number, is answered
// with the codec we expect, by a server that takes every codec and by one
// that takes G.711 only; 488 when nothing fits. Chromium's offer is
// DTLS-SRTP (UDP/TLS/RTP/SAVPF), which plain SIP does not take.
func TestCapturedSDPNegotiation(t *testing.T) {
	type want struct {
		status int
		answer answered
	}
	cases := map[string]struct{ all, g711 want }{
		"baresip-pcmu.sdp":   {want{200, answered{"PCMU/8000", 0, 101}}, want{200, answered{"PCMU/8000", 0, 101}}},
		"baresip-opus.sdp":   {want{200, answered{"opus/48000/2", 96, 101}}, want{status: 488}},
		"baresip-g722.sdp":   {want{200, answered{"G722/8000", 9, 101}}, want{status: 488}},
		"baresip-all.sdp":    {want{200, answered{"PCMU/8000", 0, 101}}, want{200, answered{"PCMU/8000", 0, 101}}},
		"sipp-uac.sdp":       {want{200, answered{"PCMU/8000", 0, 0}}, want{200, answered{"PCMU/8000", 0, 0}}},
		"sipp-uac-pcap.sdp":  {want{200, answered{"PCMA/8000", 8, 101}}, want{200, answered{"PCMA/8000", 8, 101}}},
		"chromium-offer.sdp": {want{status: 488}, want{status: 488}},
	}
	files, err := filepath.Glob(filepath.Join(capturedSDP, "*.sdp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", capturedSDP, err)
	}
	type server struct {
		name   string
		expect func(name string) want
		codecs []string
	}
	for _, srv := range []server{
		{"all codecs", func(n string) want { return cases[n].all }, nil},
		{"G.711 only", func(n string) want { return cases[n].g711 }, []string{"pcmu", "pcma"}},
	} {
		s, addr := captureServer(t, srv.codecs...)
		for i, p := range files {
			name := filepath.Base(p)
			t.Run(srv.name+"/"+strings.TrimSuffix(name, ".sdp"), func(t *testing.T) {
				if _, ok := cases[name]; !ok {
					t.Fatalf("%s has no expected answer in this table", name)
				}
				want := srv.expect(name)
				offer, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				c := newRawClient(t, addr)
				// The offer goes in as captured (CRLF); the headers get CRLF too.
				msg := guest(request("INVITE", "sip:9196@voxgate", fmt.Sprintf("sdp%d", i), 1, "Content-Type: application/sdp\n", string(offer)))
				msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
				msg = fillPort(msg, c.port())
				req := sendCaptured(t, c, []byte(msg))
				res := c.final(3 * time.Second)
				if res.StatusCode != want.status {
					t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, want.status)
				}
				if res.StatusCode == 488 && res.GetHeader("Warning") == nil {
					t.Errorf("488 without a Warning saying why:\n%s", res)
				}
				if res.StatusCode == 200 {
					checkAnswer(t, res, want.answer)
				}
				finishInvite(t, s, c, req, res)
			})
		}
	}
}
