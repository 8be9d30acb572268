package sip

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/voxgate/voxgate/audio"
	_ "github.com/voxgate/voxgate/audio/opus" // registers Opus with the audio codec registry
)

// Errors of SDP negotiation; the INVITE handler turns them into statuses.
var (
	ErrBadSDP        = errors.New("malformed SDP")
	ErrNoAudio       = errors.New("no audio stream offered")
	ErrNoCommonCodec = errors.New("no common codec")
)

// codecInfo is an audio codec voxgate speaks on the SIP side: the SDP part
// of its entry in the audio codec registry.
type codecInfo struct {
	Name     string // as in rtpmap: PCMU, PCMA, G722, opus
	PT       uint8  // static payload type, or the dynamic one voxgate offers
	Rate     int    // RTP clock rate
	Channels int    // in rtpmap when not 1 (opus/48000/2, RFC 7587)
	Fmtp     string // what voxgate asks of the peer's encoder
}

// rtpmap is the codec's encoding as an rtpmap attribute writes it.
func (c codecInfo) rtpmap() string {
	if c.Channels > 1 {
		return fmt.Sprintf("%s/%d/%d", c.Name, c.Rate, c.Channels)
	}
	return fmt.Sprintf("%s/%d", c.Name, c.Rate)
}

// cnPT is comfort noise's static payload type (RFC 3551, RFC 3389).
const cnPT = 13

// g711 reports whether the codec is G.711 (the codecs voxgate sends
// comfort noise with).
func (c codecInfo) g711() bool { return c.Name == "PCMU" || c.Name == "PCMA" }

// dynamic reports whether the codec has no static payload type.
func (c codecInfo) dynamic() bool { return c.PT >= 96 }

// codecByName looks a codec up in the audio codec registry, ignoring case.
func codecByName(name string) (codecInfo, bool) {
	c, ok := audio.LookupCodec(name)
	if !ok {
		return codecInfo{}, false
	}
	return codecInfo{Name: c.Name, PT: c.PayloadType, Rate: c.Rate, Channels: c.Channels, Fmtp: c.Fmtp}, true
}

// Direction is an SDP media direction attribute.
type Direction string

// Media directions (RFC 3264 section 6.1).
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// reverse returns the direction to answer with.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Sends reports whether a side with this direction sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether a side with this direction receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// mediaOffer is what we take from a peer's SDP for the audio stream.
type mediaOffer struct {
	Addr     netip.AddrPort // where to send RTP; invalid when the peer holds with 0.0.0.0
	Codec    codecInfo
	PT       uint8
	DTMFPT   uint8 // 0: no telephone-event
	DTMFRate int   // telephone-event's clock rate (8000, or the codec's)
	// CNPT is the peer's comfort noise payload type (RFC 3389, CN/8000),
	// when the chosen codec is G.711; 0: none.
	CNPT      uint8
	Ptime     int // ms
	Direction Direction
	Index     int      // index of the audio m-line
	MLines    []string // the offer's m-line media kinds, to answer each
	MFormats  []string // first format of each m-line, for rejecting it
	// DTX: the peer's fmtp for the chosen codec has usedtx=1 (RFC 7587):
	// it prefers gaps in silence, so voxgate may send them.
	DTX bool
	// Proto is the audio m-line's transport: RTP/AVP (or RTP/AVPF) or
	// RTP/SAVP. Crypto holds its a=crypto lines voxgate can use, in the
	// offerer's order; CryptoErr why the first unusable one was refused.
	Proto     string
	Crypto    []cryptoAttr
	CryptoErr error
}

// parseOffer picks the audio stream of a peer's SDP and the codec to use:
// the first one in the offerer's order that we accept (RFC 3264 section 6.1).
func parseOffer(body []byte, accept []codecInfo) (mediaOffer, error) {
	var mo mediaOffer
	var s sdp.SessionDescription
	if err := s.UnmarshalString(string(body)); err != nil {
		return mo, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	mo.Index = -1
	for i, md := range s.MediaDescriptions {
		mo.MLines = append(mo.MLines, md.MediaName.Media)
		first := ""
		if len(md.MediaName.Formats) > 0 {
			first = md.MediaName.Formats[0]
		}
		mo.MFormats = append(mo.MFormats, first)
		if md.MediaName.Media != "audio" || mo.Index >= 0 || md.MediaName.Port.Value == 0 {
			continue
		}
		proto := strings.Join(md.MediaName.Protos, "/")
		if !strings.HasPrefix(proto, "RTP/AVP") && proto != "RTP/SAVP" {
			continue
		}
		mo.Index, mo.Proto = i, proto
		if err := mo.fromMedia(&s, md, accept); err != nil {
			return mo, err
		}
	}
	if mo.Index < 0 {
		return mo, ErrNoAudio
	}
	return mo, nil
}

func (mo *mediaOffer) fromMedia(s *sdp.SessionDescription, md *sdp.MediaDescription, accept []codecInfo) error {
	conn := md.ConnectionInformation
	if conn == nil {
		conn = s.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return fmt.Errorf("%w: connection address %q", ErrBadSDP, conn.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: port %d", ErrBadSDP, port)
	}
	if !ip.IsUnspecified() {
		mo.Addr = netip.AddrPortFrom(ip, uint16(port))
	}
	rtpmap := map[string]string{} // pt -> "NAME/rate"
	fmtp := map[string]string{}   // pt -> parameters
	mo.Direction = SendRecv
	for _, a := range append(append([]sdp.Attribute{}, s.Attributes...), md.Attributes...) {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if ok {
				rtpmap[pt] = strings.ToUpper(enc)
			}
		case "fmtp":
			if pt, params, ok := strings.Cut(a.Value, " "); ok {
				fmtp[pt] = params
			}
		case "ptime":
			if v, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && v >= 10 && v <= 120 && v%10 == 0 {
				mo.Ptime = v
			}
		case "sendrecv", "sendonly", "recvonly", "inactive":
			mo.Direction = Direction(a.Key)
		}
	}
	mo.readCrypto(md.Attributes) // media level only (RFC 4568 9.1)
	if ip.IsUnspecified() && mo.Direction == SendRecv {
		mo.Direction = SendOnly // RFC 2543 hold: c=0.0.0.0
	}
	if mo.Ptime == 0 {
		mo.Ptime = 20
	}
	found := false
	cn := uint8(0)            // CN/8000's payload type, if offered
	events := map[int]uint8{} // telephone-event clock rate -> payload type
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		enc := rtpmap[f]
		if enc == "CN/8000" || (enc == "" && pt == cnPT) {
			cn = uint8(pt)
			continue
		}
		if rest, ok := strings.CutPrefix(enc, "TELEPHONE-EVENT/"); ok {
			rate, _, _ := strings.Cut(rest, "/")
			if r, err := strconv.Atoi(rate); err == nil && r > 0 && events[r] == 0 {
				events[r] = uint8(pt)
			}
			continue
		}
		if found {
			continue
		}
		for _, c := range accept {
			name := strings.ToUpper(fmt.Sprintf("%s/%d", c.Name, c.Rate))
			if (enc == "" && pt == int(c.PT) && !c.dynamic()) || enc == name || strings.HasPrefix(enc, name+"/") {
				mo.Codec, mo.PT, found = c, uint8(pt), true
				mo.DTX = hasParam(fmtp[f], "usedtx", "1")
				break
			}
		}
	}
	// RFC 4733 events run at the audio's clock; many peers offer them at
	// 8000 only, which voxgate takes too (durations are converted).
	if found {
		for _, r := range []int{mo.Codec.Rate, 8000} {
			if pt := events[r]; pt != 0 {
				mo.DTMFPT, mo.DTMFRate = pt, r
				break
			}
		}
		if mo.Codec.g711() {
			mo.CNPT = cn
		}
	}
	if !found {
		var offered []string
		for _, f := range md.MediaName.Formats {
			if e := rtpmap[f]; e != "" {
				offered = append(offered, e)
			} else {
				offered = append(offered, f)
			}
		}
		return fmt.Errorf("%w (offered %s)", ErrNoCommonCodec, strings.Join(offered, " "))
	}
	return nil
}

// localMedia is our side of an audio stream, for writing SDP.
type localMedia struct {
	IP        netip.Addr
	Port      int
	SessID    uint64
	Version   uint64
	Codecs    []codecInfo // in our order; an answer has exactly one
	PTs       []uint8     // payload types matching Codecs
	DTMFPT    uint8
	DTMFRate  int   // 0: 8000
	CNPT      uint8 // comfort noise (RFC 3389, CN/8000); 0: none
	Ptime     int
	Direction Direction
	// Proto is the m-line's transport ("": RTP/AVP); Crypto the a=crypto
	// lines with our keys (several in an offer, one in an answer).
	Proto  string
	Crypto []cryptoAttr
}

// marshal writes the SDP. For an answer, mo gives the offer's m-lines so
// that streams we do not take are refused with port 0 (RFC 3264 section 6).
func (l *localMedia) marshal(mo *mediaOffer) []byte {
	var b strings.Builder
	ipv := "IP4"
	if l.IP.Is6() {
		ipv = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=voxgate %d %d IN %s %s\r\ns=voxgate\r\nc=IN %s %s\r\nt=0 0\r\n",
		l.SessID, l.Version, ipv, l.IP, ipv, l.IP)
	audio := func() {
		fmt.Fprintf(&b, "m=audio %d %s", l.Port, cmp.Or(l.Proto, "RTP/AVP"))
		for _, pt := range l.PTs {
			fmt.Fprintf(&b, " %d", pt)
		}
		if l.DTMFPT != 0 {
			fmt.Fprintf(&b, " %d", l.DTMFPT)
		}
		if l.CNPT != 0 {
			fmt.Fprintf(&b, " %d", l.CNPT)
		}
		b.WriteString("\r\n")
		for i, c := range l.Codecs {
			fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", l.PTs[i], c.rtpmap())
			if c.Fmtp != "" {
				fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", l.PTs[i], c.Fmtp)
			}
		}
		if l.DTMFPT != 0 {
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n", l.DTMFPT, cmp.Or(l.DTMFRate, 8000), l.DTMFPT)
		}
		if l.CNPT != 0 {
			fmt.Fprintf(&b, "a=rtpmap:%d CN/8000\r\n", l.CNPT)
		}
		fmt.Fprintf(&b, "a=ptime:%d\r\na=%s\r\n", l.Ptime, l.Direction)
		for _, c := range l.Crypto {
			fmt.Fprintf(&b, "a=crypto:%s\r\n", c)
		}
	}
	if mo == nil {
		audio()
		return []byte(b.String())
	}
	for i, kind := range mo.MLines {
		if i == mo.Index {
			audio()
			continue
		}
		fmt.Fprintf(&b, "m=%s 0 RTP/AVP %s\r\n", kind, mo.MFormats[i])
	}
	return []byte(b.String())
}

// hasParam reports whether an fmtp line ("a=1;b=2") sets name to value.
func hasParam(params, name, value string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) && strings.TrimSpace(v) == value {
			return true
		}
	}
	return false
}
