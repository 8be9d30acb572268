package main

import (
	"strings"
	"testing"
)

// A NetLog cut short (Chromium killed) still reads: the excerpt has the
// network change, the session closed under it, the request it failed and
// the request naming the bundle, and leaves out data frames and requests
// that ended well.
func TestNetLogExcerpt(t *testing.T) {
	ex, err := netLogExcerpt("testdata/netlog-cut.json", 100, "jssip.min.js")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(ex, "\n")
	want := []string{
		"100 NETWORK_CHANGE_NOTIFIER#1 NETWORK_IP_ADDRESSES_CHANGED",
		"110 HTTP2_SESSION#48 HTTP2_SESSION_SEND_HEADERS",
		"112 HTTP2_SESSION#48 HTTP2_SESSION_CLOSE",
		"113 URL_REQUEST#52 URL_REQUEST_START_JOB {\"net_error\":-21}",
	}
	if len(lines) != len(want) {
		t.Fatalf("excerpt:\n%s\nwant %d lines", ex, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start %q", i, lines[i], w)
		}
	}
	if ex, _ := netLogExcerpt("testdata/netlog-cut.json", 2); strings.Count(ex, "\n") != 1 {
		t.Errorf("max 2 gave:\n%s", ex)
	}
	if _, err := netLogExcerpt("testdata/no-such-netlog.json", 10); err == nil {
		t.Error("a missing NetLog gave no error")
	}
}
