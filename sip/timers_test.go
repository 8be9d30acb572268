package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/internal/config"
)

func TestParseSessionExpires(t *testing.T) {
	cases := []struct {
		in   string
		want SessionExpires
		err  bool
	}{
		{"1800", SessionExpires{Seconds: 1800}, false},
		{" 90 ;refresher=uac", SessionExpires{Seconds: 90, Refresher: "uac"}, false},
		{"4000;REFRESHER=UAS;foo=bar", SessionExpires{Seconds: 4000, Refresher: "uas"}, false},
		{"600;x-vendor", SessionExpires{Seconds: 600}, false},
		{"", SessionExpires{}, true},
		{"abc", SessionExpires{}, true},
		{"-5", SessionExpires{}, true},
		{"0", SessionExpires{}, true},
		{"99999999999", SessionExpires{}, true},
		{"1800;refresher=proxy", SessionExpires{}, true},
		{"1800;refresher", SessionExpires{}, true},
		{"1800;;", SessionExpires{}, true},
		{"1800 refresher=uac", SessionExpires{}, true},
	}
	for _, c := range cases {
		got, err := ParseSessionExpires(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseSessionExpires(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrBadTimerHeader) {
			t.Errorf("ParseSessionExpires(%q): error %v is not ErrBadTimerHeader", c.in, err)
		}
	}
}

func TestParseMinSE(t *testing.T) {
	for in, want := range map[string]int{"90": 90, " 120 ": 120, "90;lr": 90} {
		if got, err := ParseMinSE(in); err != nil || got != want {
			t.Errorf("ParseMinSE(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "0", "90;", "90;a b", "1e3"} {
		if _, err := ParseMinSE(in); !errors.Is(err, ErrBadTimerHeader) {
			t.Errorf("ParseMinSE(%q): error %v, want ErrBadTimerHeader", in, err)
		}
	}
}

// FuzzSessionExpires feeds header values from the wire: no panic, and what
// parses formats back to a value that parses the same.
func FuzzSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", "4000;refresher=uas;x=y", "1;refresher", ";", "", "7;a=\"b\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		se, err := ParseSessionExpires(v)
		if err == nil {
			if se.Seconds < 1 || se.Seconds >= maxSessionInterval || (se.Refresher != "" && se.Refresher != "uac" && se.Refresher != "uas") {
				t.Fatalf("%q parsed to %+v", v, se)
			}
			again, err := ParseSessionExpires(se.String())
			if err != nil || again != se {
				t.Fatalf("%q -> %+v -> %q -> %+v, %v", v, se, se.String(), again, err)
			}
		}
		if n, err := ParseMinSE(v); err == nil && (n < 1 || n >= maxSessionInterval) {
			t.Fatalf("Min-SE %q parsed to %d", v, n)
		}
	})
}

func TestSessionTimerConfig(t *testing.T) {
	cfg := Config{}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if st := cfg.SessionTimers; st.Mode != "on" || st.Expires != 1800*time.Second || st.MinSE != 90*time.Second {
		t.Fatalf("defaults %+v, want on, 1800s, 90s", st)
	}
	cases := []struct {
		st    SessionTimerConfig
		field string
	}{
		{SessionTimerConfig{Mode: "sometimes"}, "session_timers.mode"},
		{SessionTimerConfig{MinSE: 30 * time.Second}, "session_timers.min_se"},
		{SessionTimerConfig{MinSE: 90500 * time.Millisecond}, "session_timers.min_se"},
		{SessionTimerConfig{Expires: 60 * time.Second}, "session_timers.expires"},
		{SessionTimerConfig{Expires: 48 * time.Hour}, "session_timers.expires"},
	}
	for _, c := range cases {
		cfg := Config{SessionTimers: c.st}
		err := cfg.Validate()
		var fe *config.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want an error for %s", c.st, err, c.field)
		}
	}
	cfg = Config{SessionTimers: SessionTimerConfig{Mode: "OFF", Expires: 600 * time.Second, MinSE: 120 * time.Second}}
	if err := cfg.Validate(); err != nil || cfg.SessionTimers.Mode != "off" {
		t.Fatalf("%v, mode %q", err, cfg.SessionTimers.Mode)
	}
}

// Bad timer headers get 400; with timers off, a request requiring them gets
// 420; OPTIONS lists UPDATE in Allow.
func TestTimerHeadersBadInput(t *testing.T) {
	_, addr := testServer(t, nil)
	for _, h := range []string{"Session-Expires: soon\n", "Min-SE: -1\nSession-Expires: 1800\n", "Session-Expires: 1800;refresher=me\n"} {
		c := newRawClient(t, addr)
		c.send(guest(request("INVITE", "sip:9196@voxgate", "b"+h[:3], 1, h+"Content-Type: application/sdp\n", testOffer)))
		if res := c.final(3 * time.Second); res.StatusCode != 400 {
			t.Errorf("%q: got %d %s, want 400", h, res.StatusCode, res.Reason)
		}
	}
	c := newRawClient(t, addr)
	c.send(request("OPTIONS", "sip:voxgate", "o1", 1, "", ""))
	if res := c.final(3 * time.Second); res.GetHeader("Allow") == nil || !strings.Contains(res.GetHeader("Allow").Value(), "UPDATE") ||
		!listsTag(res, "Supported", "k", "timer") {
		t.Errorf("OPTIONS lacks Allow with UPDATE or Supported: timer:\n%s", res)
	}

	_, addr = testServer(t, func(cfg *Config) { cfg.SessionTimers.Mode = "off" })
	c = newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "r1", 1, "Require: timer\nSession-Expires: 1800\nContent-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 420 || res.GetHeader("Unsupported") == nil || res.GetHeader("Unsupported").Value() != "timer" {
		t.Fatalf("timers off, Require: timer: got %d %s, want 420 Unsupported: timer", res.StatusCode, res.Reason)
	}
}

// A re-INVITE that arrives while voxgate's own refresh re-INVITE is out
// gets 491 (glare, RFC 3261 14.2) and the call goes on; once the refresh is
// over, the same re-INVITE is taken.
func TestReinviteGlare491(t *testing.T) {
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "gl1", 1, "Content-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	tag, _ := res.To().Params.Get("tag")
	inDialog := func(method string, cseq int, extra, body string) string {
		m := guest(request(method, "sip:9196@voxgate", "gl1", cseq, extra, body))
		return strings.Replace(m, "To: <sip:9196@voxgate>", "To: <sip:9196@voxgate>;tag="+tag, 1)
	}
	c.send(strings.Replace(inDialog("ACK", 1, "", ""), "branch=z9hG4bKgl11", "branch=z9hG4bKack11", 1))
	call := takeCall(t, calls) // Answer returns once the ACK is in
	call.timer.mu.Lock()
	call.timer.inviting = true // as while sendRefresh waits for the peer's answer
	call.timer.mu.Unlock()
	c.send(inDialog("INVITE", 2, "Content-Type: application/sdp\n", testOffer))
	if res := c.final(3 * time.Second); res.StatusCode != 491 {
		t.Fatalf("re-INVITE during voxgate's refresh: %d, want 491", res.StatusCode)
	}
	c.send(inDialog("ACK", 2, "", "")) // the ACK to a non-2xx shares the INVITE's branch
	call.timer.mu.Lock()
	call.timer.inviting = false
	call.timer.mu.Unlock()
	c.send(inDialog("INVITE", 3, "Content-Type: application/sdp\n", testOffer))
	for {
		res := c.final(3 * time.Second)
		if res.CSeq().SeqNo != 3 {
			continue // a late copy of an earlier answer
		}
		if res.StatusCode != 200 {
			t.Fatalf("re-INVITE after the refresh: %d, want 200", res.StatusCode)
		}
		break
	}
	if call.state() != stateAnswered {
		t.Fatal("the call ended")
	}
}

// A Session-Expires below Min-SE from a caller that does not list
// Supported: timer (a proxy inserted it) is raised to Min-SE, not refused
// with a 422 the caller would not understand; voxgate then refreshes.
func TestSessionExpiresRaisedWithoutSupportedTimer(t *testing.T) {
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	c := newRawClient(t, addr)
	c.send(guest(request("INVITE", "sip:9196@voxgate", "px1", 1, "Session-Expires: 60\nContent-Type: application/sdp\n", testOffer)))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s, want 200", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Session-Expires"); h == nil || h.Value() != "90;refresher=uas" {
		t.Fatalf("Session-Expires %v, want 90;refresher=uas:\n%s", h, res)
	}
	if res.GetHeader("Require") != nil {
		t.Fatalf("Require in a 200 to a caller without timers:\n%s", res)
	}
}
