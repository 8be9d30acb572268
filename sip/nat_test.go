package sip

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Allow header lists exactly the methods voxgate has a handler for,
// and Supported lists timer only while session timers are on.
func TestAllowAndSupportedTrueToWhatIsServed(t *testing.T) {
	s, addr := testServer(t, nil)
	var served []string
	for m := range s.handlers {
		served = append(served, string(m))
	}
	slices.Sort(served)
	var listed []string
	for _, m := range strings.Split(allowedMethods, ",") {
		listed = append(listed, strings.TrimSpace(m))
	}
	slices.Sort(listed)
	if !slices.Equal(served, listed) {
		t.Errorf("Allow lists %v, handlers serve %v", listed, served)
	}
	c := newRawClient(t, addr)
	c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "al1", 1, "", ""))
	res := c.final(3 * time.Second)
	if h := res.GetHeader("Allow"); h == nil || h.Value() != allowedMethods {
		t.Errorf("OPTIONS Allow %v, want %q", h, allowedMethods)
	}
	if h := res.GetHeader("Supported"); h == nil || !strings.Contains(h.Value(), "timer") {
		t.Errorf("OPTIONS Supported %v, want timer (session timers on by default)", h)
	}

	_, addr2 := testServer(t, func(c *Config) { c.SessionTimers.Mode = "off" })
	c2 := newRawClient(t, addr2)
	c2.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "al2", 1, "", ""))
	if h := c2.final(3 * time.Second).GetHeader("Supported"); h != nil && strings.Contains(h.Value(), "timer") {
		t.Errorf("session timers off but OPTIONS says Supported: %s", h.Value())
	}
}

// A phone behind NAT writes its private address and port in Via: the
// answer goes to where the request came from, and the Via of the answer
// says so (received, and rport when the phone asked for it, RFC 3581).
func TestResponseToNATedSource(t *testing.T) {
	_, addr := testServer(t, nil)
	for _, tc := range []struct {
		name, via string
		rport     bool
	}{
		{"rport", "192.0.2.7:5099;branch=z9hG4bKnat1;rport", true},
		{"no rport", "192.0.2.7:PORT;branch=z9hG4bKnat2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(t, addr)
			c.send(fmt.Sprintf("OPTIONS sip:voxgate@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP %s\n"+
				"From: <sip:alice@voxgate>;tag=n1\nTo: <sip:voxgate>\nCall-ID: nat-%s\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n"+
				"Content-Length: 0\n\n", tc.via, strings.ReplaceAll(tc.name, " ", "")))
			res := c.final(3 * time.Second) // read on the socket it came from
			via := res.Via()
			if via == nil {
				t.Fatalf("no Via in\n%s", res)
			}
			if got, _ := via.Params.Get("received"); got != "127.0.0.1" {
				t.Errorf("received=%q, want 127.0.0.1:\n%s", got, res)
			}
			got, has := via.Params.Get("rport")
			if tc.rport && got != fmt.Sprint(c.port()) {
				t.Errorf("rport=%q, want the source port %d", got, c.port())
			}
			if !tc.rport && has {
				t.Errorf("rport=%q added though the phone did not ask", got)
			}
		})
	}
}
