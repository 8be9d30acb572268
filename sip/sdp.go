package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors of SDP negotiation; the INVITE handler turns them into statuses.
var (
	ErrBadSDP        = errors.New("malformed SDP")
	ErrNoAudio       = errors.New("no audio stream offered")
	ErrNoCommonCodec = errors.New("no common codec")
)

// codecInfo is an audio codec voxgate speaks on the SIP side.
type codecInfo struct {
	Name string // as in rtpmap: PCMU, PCMA
	PT   uint8  // static payload type
	Rate int
	ALaw bool
}

var sipCodecs = map[string]codecInfo{
	"pcmu": {Name: "PCMU", PT: 0, Rate: 8000},
	"pcma": {Name: "PCMA", PT: 8, Rate: 8000, ALaw: true},
}

func codecByName(name string) (codecInfo, bool) {
	c, ok := sipCodecs[strings.ToLower(name)]
	return c, ok
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
	Addr      netip.AddrPort // where to send RTP; invalid when the peer holds with 0.0.0.0
	Codec     codecInfo
	PT        uint8
	DTMFPT    uint8 // 0: no telephone-event
	Ptime     int   // ms
	Direction Direction
	Index     int      // index of the audio m-line
	MLines    []string // the offer's m-line media kinds, to answer each
	MFormats  []string // first format of each m-line, for rejecting it
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
		if !strings.HasPrefix(strings.Join(md.MediaName.Protos, "/"), "RTP/AVP") {
			continue
		}
		mo.Index = i
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
	mo.Direction = SendRecv
	for _, a := range append(append([]sdp.Attribute{}, s.Attributes...), md.Attributes...) {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if ok {
				rtpmap[pt] = strings.ToUpper(enc)
			}
		case "ptime":
			if v, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && v >= 10 && v <= 120 && v%10 == 0 {
				mo.Ptime = v
			}
		case "sendrecv", "sendonly", "recvonly", "inactive":
			mo.Direction = Direction(a.Key)
		}
	}
	if ip.IsUnspecified() && mo.Direction == SendRecv {
		mo.Direction = SendOnly // RFC 2543 hold: c=0.0.0.0
	}
	if mo.Ptime == 0 {
		mo.Ptime = 20
	}
	found := false
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		enc := rtpmap[f]
		if strings.HasPrefix(enc, "TELEPHONE-EVENT/8000") {
			if mo.DTMFPT == 0 {
				mo.DTMFPT = uint8(pt)
			}
			continue
		}
		if found {
			continue
		}
		for _, c := range accept {
			name := c.Name + "/8000"
			if (enc == "" && pt == int(c.PT)) || enc == name || strings.HasPrefix(enc, name+"/") {
				mo.Codec, mo.PT, found = c, uint8(pt), true
				break
			}
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
	Ptime     int
	Direction Direction
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
		fmt.Fprintf(&b, "m=audio %d RTP/AVP", l.Port)
		for _, pt := range l.PTs {
			fmt.Fprintf(&b, " %d", pt)
		}
		if l.DTMFPT != 0 {
			fmt.Fprintf(&b, " %d", l.DTMFPT)
		}
		b.WriteString("\r\n")
		for i, c := range l.Codecs {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", l.PTs[i], c.Name, c.Rate)
		}
		if l.DTMFPT != 0 {
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", l.DTMFPT, l.DTMFPT)
		}
		fmt.Fprintf(&b, "a=ptime:%d\r\na=%s\r\n", l.Ptime, l.Direction)
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
