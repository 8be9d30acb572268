package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDuplicateTag(t *testing.T) {
	for _, tc := range []struct{ head, want string }{
		{"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>", ""},
		{"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1;tag=2\r\nTo: <sip:c@d>", "Bad Request (two tags in From)"},
		{"INVITE sip:a@b SIP/2.0\r\nf: <sip:a@b>;TAG=1;Tag=2", "Bad Request (two tags in From)"},
		{"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\n To : <sip:c@d>;tag=x ;tag=y", "Bad Request (two tags in To)"},
		{"INVITE sip:a@b SIP/2.0\r\nt: <sip:c@d>;tag=x;tag=y", "Bad Request (two tags in To)"},
		{"INVITE sip:a@b SIP/2.0\r\nSubject: ;tag=1;tag=2", ""},
		{"INVITE sip:a@b SIP/2.0\r\nTo", ""},
		{"INVITE sip:a@b SIP/2.0\r\nTo: x;tag", ""},
	} {
		if got := duplicateTag([]byte(tc.head)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.head, got, tc.want)
		}
	}
	head := []byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE")
	if n := testing.AllocsPerRun(100, func() { duplicateTag(head) }); n != 0 {
		t.Errorf("duplicateTag allocates %v times", n)
	}
}

// txKeyable agrees with sipgo's ServerTxKeyMake, which it stands for.
func TestTxKeyable(t *testing.T) {
	p := sip.NewParser()
	for _, hdrs := range []string{
		"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>",
		"Via: SIP/2.0/UDP h;branch=z9hG4bK\r\nFrom: <sip:a@b>",
		"Via: SIP/2.0/UDP h;branch=z9hG4bK\r\nFrom: <sip:a@b>;tag=1",
		"Via: SIP/2.0/UDP h;branch=abc\r\nFrom: <sip:a@b>",
		"Via: SIP/2.0/UDP h;branch=abc\r\nFrom: <sip:a@b>;tag=",
		"Via: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=9",
		"Via: SIP/2.0/UDP h;branch=\r\nFrom: <sip:a@b>",
		"Via: SIP/2.0/UDP h;branch=Z9HG4BK1\r\nFrom: <sip:a@b>",
	} {
		raw := "OPTIONS sip:a@b SIP/2.0\r\n" + hdrs + "\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		msg, err := p.ParseSIP([]byte(raw))
		if err != nil {
			t.Fatalf("%q: %v", hdrs, err)
		}
		req := msg.(*sip.Request)
		_, err = sip.ServerTxKeyMake(req)
		if got := txKeyable(req); got != (err == nil) {
			t.Errorf("%s: txKeyable %v, ServerTxKeyMake error %v", strings.ReplaceAll(hdrs, "\r\n", " | "), got, err)
		}
	}
}
