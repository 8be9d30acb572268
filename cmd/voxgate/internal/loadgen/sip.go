package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// phones places the SIP calls: one sipgo user agent on one UDP socket for
// all of them, as a SIP trunk or a busy PBX would.
type phones struct {
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	dialogs *sipgo.DialogClientCache
	target  netip.AddrPort
	ports   *portPool
	local   netip.AddrPort
}

func newPhones(ctx context.Context, target string, ports string) (*phones, error) {
	addr, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, fmt.Errorf("loadgen: SIP address: %w", err)
	}
	pool, err := newPortPool(ports)
	if err != nil {
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("voxgate-loadgen"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	rc := &readyConn{PacketConn: conn, ready: make(chan struct{})}
	go func() { _ = srv.ServeUDP(rc) }()
	go func() { <-ctx.Done(); ua.Close() }()
	// sipgo sends from the listening socket only once it reads from it.
	select {
	case <-rc.ready:
	case <-time.After(5 * time.Second):
		return nil, errors.New("loadgen: the SIP socket did not start")
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(local.String()), sipgo.WithClientPort(int(local.Port())))
	if err != nil {
		return nil, err
	}
	p := &phones{ua: ua, client: client, target: addr, ports: pool, local: local}
	p.dialogs = sipgo.NewDialogClientCache(client, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "loadgen", Host: "127.0.0.1", Port: int(local.Port())}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		}
	})
	return p, nil
}

// readyConn tells when sipgo first reads from the socket.
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// sipCall is one call placed: its dialog and its media sockets.
type sipCall struct {
	dlg        *sipgo.DialogClientSession
	rtp, rtcp  *net.UDPConn
	port       int
	remote     netip.AddrPort
	payloadTyp uint8
}

// call dials number with an offer of codec (and telephone-event) and
// returns once the call is answered and acknowledged.
func (p *phones) call(ctx context.Context, from, number, codec string) (*sipCall, error) {
	rtpc, rtcpc, port, err := p.ports.listen()
	if err != nil {
		return nil, err
	}
	c := &sipCall{rtp: rtpc, rtcp: rtcpc, port: port}
	fail := func(err error) (*sipCall, error) {
		c.close()
		return nil, fmt.Errorf("call %s: %w", number, err)
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: number, Host: p.target.Addr().String(), Port: int(p.target.Port())})
	params := sip.NewParams()
	params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: "127.0.0.1"}, Params: params})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer(port, codec))
	dlg, err := p.dialogs.WriteInvite(ctx, req)
	if err != nil {
		return fail(err)
	}
	c.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return fail(err)
	}
	if c.remote, c.payloadTyp, err = answered(dlg.InviteResponse.Body(), codec); err != nil {
		return fail(err)
	}
	if err := dlg.Ack(ctx); err != nil {
		return fail(err)
	}
	return c, nil
}

// hangup sends BYE and closes the media sockets.
func (c *sipCall) hangup(ctx context.Context) error {
	var err error
	if c.dlg != nil {
		err = c.dlg.Bye(ctx)
	}
	c.close()
	return err
}

func (c *sipCall) close() {
	if c.dlg != nil {
		_ = c.dlg.Close()
	}
	c.rtp.Close()
	c.rtcp.Close()
}

// offer is a desk phone's SDP offer: one codec and telephone-event.
func offer(port int, codec string) []byte {
	id := strconv.FormatInt(time.Now().UnixNano(), 10)
	m := fmt.Sprintf("m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", port)
	if codec == "pcmu-cn" {
		m = fmt.Sprintf("m=audio %d RTP/AVP 0 13 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", port)
	}
	if codec == "opus" {
		m = fmt.Sprintf("m=audio %d RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1;usedtx=1\r\na=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\n", port)
	}
	return []byte("v=0\r\no=loadgen " + id + " " + id + " IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + m + "a=ptime:20\r\na=sendrecv\r\n")
}

// answered reads voxgate's answer: where to send, and the payload type of
// codec it chose.
func answered(body []byte, codec string) (netip.AddrPort, uint8, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("answer SDP: %w", err)
	}
	if len(s.MediaDescriptions) == 0 {
		return netip.AddrPort{}, 0, errors.New("answer SDP has no media")
	}
	md := s.MediaDescriptions[0]
	conn := s.ConnectionInformation
	if md.ConnectionInformation != nil {
		conn = md.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return netip.AddrPort{}, 0, errors.New("answer SDP has no address")
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	want := map[string]string{"pcmu": "pcmu/8000", "pcmu-cn": "pcmu/8000", "opus": "opus/48000"}[codec]
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, _ := strings.Cut(a.Value, " ")
		if strings.HasPrefix(strings.ToLower(enc), want) {
			n, err := strconv.Atoi(pt)
			if err != nil {
				return netip.AddrPort{}, 0, err
			}
			return netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), uint8(n), nil
		}
	}
	if (codec == "pcmu" || codec == "pcmu-cn") && len(md.MediaName.Formats) > 0 && md.MediaName.Formats[0] == "0" {
		return netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), 0, nil // static, no rtpmap
	}
	return netip.AddrPort{}, 0, fmt.Errorf("voxgate answered without %s", codec)
}

// portPool hands out RTP/RTCP pairs (even, odd) from a range, skipping
// ports someone else holds: the range is fixed so that RTCP can go to the
// RTP port + 1, as voxgate sends it.
type portPool struct {
	mu       sync.Mutex
	min, max int
	next     int
}

func newPortPool(r string) (*portPool, error) {
	lo, hi, ok := strings.Cut(r, "-")
	a, e1 := strconv.Atoi(lo)
	b, e2 := strconv.Atoi(hi)
	if !ok || e1 != nil || e2 != nil || a < 1024 || b > 65535 || b-a < 1 {
		return nil, fmt.Errorf("loadgen: %q is not a port range", r)
	}
	a += a % 2
	return &portPool{min: a, max: b, next: a}, nil
}

func (p *portPool) listen() (rtp, rtcp *net.UDPConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for tries := (p.max - p.min + 1) / 2; tries > 0; tries-- {
		port = p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		rtp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		rtcp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			rtp.Close()
			continue
		}
		return rtp, rtcp, port, nil
	}
	return nil, nil, 0, fmt.Errorf("loadgen: no free port pair in %d-%d", p.min, p.max)
}
