package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A phone registered through a proxy that talks UDP to voxgate (Kamailio
// in front of a cluster) has a Contact naming its own leg to the proxy
// (;transport=tls). voxgate reaches it at the REGISTER's source over the
// transport the REGISTER came over (UDP), keeping the Contact as the
// Request-URI for the proxy to follow; the Contact's transport was once
// used, and the INVITE never left (no TLS to a UDP proxy).
func TestDialBindingBehindProxyUsesSourceTransport(t *testing.T) {
	s, addr := testServer(t, nil)
	proxy := newRawClient(t, addr)
	r := &registerer{t: t, c: proxy, callID: "behind-proxy"}
	if code, _, _ := r.do("alice", "alice-secret", "Contact: <sip:alice@10.9.9.9:5061;transport=tls;alias=10.9.9.9~40000~3>;expires=300\n"); code != 200 {
		t.Fatalf("register through the proxy: %d", code)
	}
	bs := s.Bindings("alice")
	if len(bs) != 1 || !strings.EqualFold(bs[0].Transport, "udp") {
		t.Fatalf("alice's bindings: %+v (want one, over UDP)", bs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() { _, _ = s.DialBinding(ctx, bs[0], "bob") }()
	inv := proxy.request(3 * time.Second)
	if inv.Method != sip.INVITE {
		t.Fatalf("the proxy got %s, want the INVITE", inv.Method)
	}
	if via := inv.Via(); via == nil || !strings.EqualFold(via.Transport, "UDP") {
		t.Fatalf("the INVITE's Via: %v (want UDP)", inv.Via())
	}
	if ru := inv.Recipient.String(); !strings.Contains(ru, "10.9.9.9:5061") || !strings.Contains(ru, "transport=tls") {
		t.Fatalf("the INVITE's Request-URI %s is not the phone's Contact", ru)
	}
}

func TestSourceTransport(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"UDP", "UDP"}, {"udp", "UDP"}, {"TCP", "TCP"}, {"TLS", ""}, {"WS", ""}, {"WSS", ""}, {"", ""}} {
		if got := sourceTransport(Binding{Transport: c.in}); got != c.want {
			t.Errorf("sourceTransport(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
