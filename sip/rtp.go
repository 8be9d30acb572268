package sip

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/voxgate/voxgate/audio"
)

// Stats are a call's media counters, readable while the call runs.
type Stats struct {
	PacketsSent, PacketsReceived uint64
	BytesSent, BytesReceived     uint64
	// Lost is RTP packets expected but never received (RFC 3550 A.3).
	Lost int64
	// Jitter is the interarrival jitter of received RTP (RFC 3550 A.8).
	Jitter time.Duration
	// RemoteFractionLost and RemoteJitter are what the peer reported about
	// our stream in its last RTCP receiver report block.
	RemoteFractionLost float64
	RemoteJitter       time.Duration
	RTCPReceived       uint64
	RTCPSent           uint64
	DTMFReceived       string // every digit received, in order (RFC 4733 and SIP INFO)
	DTMFSent           string // every digit sent as RFC 4733 events, once its end packets went out

	// RTT is the round-trip time from the peer's last report block that
	// echoed one of our sender reports (RFC 3550 6.4.1); 0 until then.
	RTT time.Duration

	// SRTPAuthFailures counts SRTP packets dropped unplayed: they failed
	// authentication, replayed an earlier one, or came as plain RTP on a
	// leg that negotiated SRTP. SRTCPAuthFailures counts the same of RTCP.
	SRTPAuthFailures, SRTCPAuthFailures uint64
}

const maxPayload = 1500

// rtpSession is one audio stream: an RTP and an RTCP socket from the pool.
type rtpSession struct {
	log        *slog.Logger
	rtpSock    *mediaSock
	rtcpSock   *mediaSock
	rxPkt      rtp.Packet // the RTP packet being handled (rx runs on one goroutine at a time)
	port       int
	pool       *portPool
	packets    audio.PacketDelivery // received media, pushed to the leg's handler
	onDTMF     func(rune)
	closeOnce  sync.Once
	startOnce  sync.Once // early media starts a session before its call does
	wg         sync.WaitGroup
	cancel     context.CancelFunc
	ssrc       uint32
	sendBuf    []byte
	lastRecvAt time.Time
	// srtp is the leg's SRTP when negotiated (nil: plain RTP); srtpFailures
	// is the server's count of packets it dropped.
	srtp         atomic.Pointer[srtpState]
	srtpFailures *[2]atomic.Uint64

	mu         sync.Mutex
	closed     bool           // close ran: start does nothing
	remote     netip.AddrPort // where RTP goes; latched to the peer's source
	remoteRTCP netip.AddrPort
	latched    bool
	codec      codecInfo
	pt, dtmfPT uint8
	dtmfRate   int       // telephone-event's clock (8000, or the codec's)
	direction  Direction // ours
	dtx        bool      // the peer asked for DTX (usedtx=1)
	// Comfort noise (RFC 3389), when the peer took CN/8000 with G.711: a
	// silent frame (below -48 dBFS) goes as a SID packet, then as gaps
	// until cnRefresh has passed, when the next SID goes.
	cnPT       uint8
	cnSilent   func([]byte) bool
	cnOn       bool   // the last packet sent was a SID: silence goes on
	cnAt       uint32 // its RTP timestamp
	cnLevel    uint8  // its noise level (-dBov)
	seq        uint16
	ts         uint32
	sentAny    bool
	marker     bool
	stats      Stats
	recv       audio.ReceiveStats
	lastSR     uint32 // middle 32 bits of the NTP time of the last SR received
	lastSRAt   time.Time
	dtmfQueue  []rune
	dtmfActive *dtmfSend
	lastDTMFTS uint32
	haveDTMFTS bool
}

type dtmfSend struct {
	event    uint8
	ts       uint32
	duration uint16
	total    uint16
	ends     int
}

func newRTPSession(log *slog.Logger, pool *portPool, ip netip.Addr) (*rtpSession, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &rtpSession{
		log:     log,
		pool:    pool,
		ssrc:    binary.BigEndian.Uint32(b[:]),
		sendBuf: make([]byte, 1500),
		seq:     uint16(b[0])<<8 | uint16(b[2]),
		ts:      uint32(b[1]) << 16,
		marker:  true,
	}
	var err error
	if s.rtpSock, s.rtcpSock, s.port, err = pool.listen(ip, s.rxRTP, s.rxRTCP); err != nil {
		return nil, err
	}
	return s, nil
}

// configure applies a negotiated offer: codec, payload types, remote address
// and our direction. A changed remote address re-arms latching.
func (s *rtpSession) configure(mo *mediaOffer, dir Direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codec, s.pt, s.dtmfPT, s.dtmfRate, s.direction = mo.Codec, mo.PT, mo.DTMFPT, cmp.Or(mo.DTMFRate, 8000), dir
	s.dtx = mo.DTX
	s.cnPT, s.cnSilent, s.cnOn = 0, nil, false
	if info, ok := audio.LookupCodec(mo.Codec.Name); ok && mo.CNPT != 0 && mo.Codec.g711() {
		s.cnPT, s.cnSilent = mo.CNPT, info.Silent
	}
	if mo.Addr.IsValid() && mo.Addr != s.remote {
		s.remote = mo.Addr
		s.remoteRTCP = netip.AddrPortFrom(mo.Addr.Addr(), mo.Addr.Port()+1)
		s.latched = false
	}
	if !dir.Sends() {
		s.marker = true
	}
}

// start runs the session's readers and RTCP; once (later calls do nothing).
func (s *rtpSession) start(ctx context.Context) {
	s.startOnce.Do(func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		ctx, s.cancel = context.WithCancel(ctx)
		s.wg.Add(1)
		s.mu.Unlock()
		if err := s.rtpSock.start(); err != nil {
			s.log.Error("rtp socket not read", "error", err)
		}
		if err := s.rtcpSock.start(); err != nil {
			s.log.Error("rtcp socket not read", "error", err)
		}
		go s.rtcpLoop(ctx)
	})
}

func (s *rtpSession) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		cancel := s.cancel
		s.closed = true
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		s.wg.Wait() // the RTCP loop's BYE goes out first
		s.rtpSock.close()
		s.rtcpSock.close()
		s.pool.release(s.port)
	})
}

// rxRTP is one packet of the RTP socket (b is the poller's: not kept).
func (s *rtpSession) rxRTP(b []byte, src netip.AddrPort) {
	n := len(b)
	b, ok := s.unprotectRTP(b)
	if !ok {
		return
	}
	pkt := &s.rxPkt
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		return
	}
	s.handleRTP(pkt, src, n)
}

func (s *rtpSession) handleRTP(pkt *rtp.Packet, src netip.AddrPort, n int) {
	now := time.Now()
	s.mu.Lock()
	// Symmetric RTP (RFC 4961): send where the peer's packets come from, which
	// gets through NAT. Latch on the first packet after each negotiation, and
	// again if the latched source has been silent for 2 s.
	if src != s.remote && (!s.latched || now.Sub(s.lastRecvAt) > 2*time.Second) {
		s.remote = src
		s.remoteRTCP = netip.AddrPortFrom(src.Addr(), src.Port()+1)
		s.log.Debug("rtp latched", "remote", src)
	}
	if src == s.remote {
		s.latched = true
		s.lastRecvAt = now
	}
	s.stats.PacketsReceived++
	s.stats.BytesReceived += uint64(n)
	s.recv.Update(pkt.SequenceNumber, pkt.Timestamp, pkt.SSRC, now, s.codec.Rate)
	pt, dtmfPT, receiving := s.pt, s.dtmfPT, s.direction.Receives()
	var digit rune
	if dtmfPT != 0 && pkt.PayloadType == dtmfPT {
		digit = s.dtmfLocked(pkt)
	}
	s.mu.Unlock()
	switch {
	case digit != 0:
		s.log.Debug("DTMF digit received", "via", "RFC 4733") // never the digit: it may be a PIN
		if s.onDTMF != nil {
			s.onDTMF(digit)
		}
	case pkt.PayloadType == pt && receiving && len(pkt.Payload) <= maxPayload:
		s.packets.Deliver(pkt.SequenceNumber, pkt.Timestamp, pkt.SSRC, pkt.Payload)
	}
}

// setHandler changes where received packets go (nil: nowhere).
func (s *rtpSession) setHandler(h audio.PacketHandler) { s.packets.Set(h) }

// dtmfLocked reports a digit once per event: at its first packet, deduplicated
// by RTP timestamp across the retransmitted start and end packets (RFC 4733 2.5).
func (s *rtpSession) dtmfLocked(pkt *rtp.Packet) rune {
	ev, err := audio.ParseDTMFEvent(pkt.Payload)
	if err != nil {
		return 0
	}
	if s.haveDTMFTS && pkt.Timestamp == s.lastDTMFTS {
		return 0
	}
	d := audio.DigitOf(ev.Event)
	if d == 0 {
		return 0
	}
	s.haveDTMFTS, s.lastDTMFTS = true, pkt.Timestamp
	s.stats.DTMFReceived += string(d)
	return d
}

// recordDTMF adds a digit that arrived outside RTP (SIP INFO) to the stats.
func (s *rtpSession) recordDTMF(d rune) {
	s.mu.Lock()
	s.stats.DTMFReceived += string(d)
	s.mu.Unlock()
}

// writePayload sends one encoded frame of samples (RTP clock units), or a
// DTMF event packet in its place while a digit is being sent. It advances
// the timestamp even when the direction forbids sending (on hold), so that
// resuming keeps the clock.
func (s *rtpSession) writePayload(payload []byte, samples uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if frame := uint32(s.codec.Rate / 50); len(payload) == 0 && frame > 0 && samples > frame {
		// A long DTX gap: all of it but its last 20 ms is a pure gap, so a
		// digit waiting to go out starts at its end and lasts what it should.
		s.ts += samples - frame
		s.marker = true
		samples = frame
	}
	if s.dtmfActive == nil && len(s.dtmfQueue) > 0 && s.dtmfPT != 0 {
		ev, _ := audio.EventOf(s.dtmfQueue[0])
		s.dtmfQueue = s.dtmfQueue[1:]
		s.dtmfActive = &dtmfSend{event: ev, ts: s.ts, total: uint16(s.dtmfRate / 5)} // 200 ms
		s.marker = true
	}
	sid, level := false, uint8(0)
	if s.cnPT != 0 && s.dtmfActive == nil && len(payload) > 0 {
		if !s.cnSilent(payload) {
			s.cnOn = false
		} else {
			level = audio.G711NoiseLevel(payload, s.codec.Name == "PCMA")
			if s.cnOn && s.ts-s.cnAt < cnRefresh && absDiff(level, s.cnLevel) < cnLevelStep {
				payload = nil // the same silence goes on: a gap
			} else {
				sid = true
			}
		}
	}
	if !s.direction.Sends() || !s.remote.IsValid() || (len(payload) == 0 && s.dtmfActive == nil) {
		// On hold, nowhere to send, or a gap in silence (DTX): the clock
		// runs on, and the next packet starts a talkspurt.
		s.ts += samples
		s.marker = true
		return nil
	}
	h := rtp.Header{Version: 2, Marker: s.marker, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: s.ssrc}
	body := s.sendBuf[12:12]
	if d := s.dtmfActive; d != nil {
		h.PayloadType = s.dtmfPT
		h.Timestamp = d.ts
		if d.duration < d.total { // in the event clock, which may differ from the audio's
			d.duration += uint16(int(samples) * s.dtmfRate / max(s.codec.Rate, 1))
		}
		ev := audio.DTMFEvent{Event: d.event, Volume: 10, Duration: d.duration, End: d.duration >= d.total}
		if ev.End {
			d.ends++
			if d.ends >= 3 { // the end packet is sent three times (RFC 4733 2.5.1.4)
				s.dtmfActive = nil
				s.stats.DTMFSent += string(audio.DigitOf(d.event))
			}
		}
		body = ev.AppendTo(body)
	} else {
		if len(payload) > len(s.sendBuf)-12 {
			return errPayloadTooBig
		}
		h.PayloadType = s.pt
		body = append(body, payload...)
	}
	if sid {
		h.PayloadType = s.cnPT
		body = append(body[:0], level)
		s.cnOn, s.cnAt, s.cnLevel = true, s.ts, level
	}
	if hn, err := h.MarshalTo(s.sendBuf); err != nil || hn != 12 {
		return err
	}
	pkt := s.sendBuf[:12+len(body)]
	s.seq++
	s.ts += samples
	s.marker = sid // speech after comfort noise starts a talkspurt
	s.sentAny = true
	s.stats.PacketsSent++
	s.stats.BytesSent += uint64(len(pkt))
	pkt, err := s.protectRTP(pkt)
	if err != nil {
		return err
	}
	return s.rtpSock.writeTo(pkt, s.remote)
}

// While silence goes on, a SID is sent again when the noise level moved by
// cnLevelStep dB or more since the last one, else after cnRefresh (8 kHz
// RTP clock units): 5 s, pjmedia's default longest silence
// (PJMEDIA_CODEC_MAX_SILENCE_PERIOD). RFC 3389 asks for a SID only when
// the noise changes; the repeat keeps NAT bindings and the peer's
// media-timeout watch (Asterisk rtptimeout, FreeSWITCH media_timeout:
// tens of seconds) fed.
const (
	cnRefresh   = 5 * 8000
	cnLevelStep = 3
)

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

func (s *rtpSession) sendDTMF(digits string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtmfPT == 0 {
		return ErrNoDTMF
	}
	for _, d := range digits {
		if _, ok := audio.EventOf(d); !ok {
			return ErrBadDigit
		}
		s.dtmfQueue = append(s.dtmfQueue, d)
	}
	return nil
}

func (s *rtpSession) snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	rep := s.recv.Report()
	st.Lost, st.Jitter = rep.Lost, rep.Jitter
	return st
}

// RTCP

// rxRTCP is one packet of the RTCP socket.
func (s *rtpSession) rxRTCP(b []byte, _ netip.AddrPort) {
	b, ok := s.unprotectRTCP(b)
	if !ok {
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.stats.RTCPReceived++
	for _, p := range pkts {
		var reports []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.lastSR = uint32(p.NTPTime >> 16)
			s.lastSRAt = time.Now()
			reports = p.Reports
		case *rtcp.ReceiverReport:
			reports = p.Reports
		}
		for _, r := range reports {
			if r.SSRC == s.ssrc {
				if rtt, ok := audio.RTTFromReport(time.Now(), r.LastSenderReport, r.Delay); ok {
					s.stats.RTT = rtt
				}
				s.stats.RemoteFractionLost = float64(r.FractionLost) / 256
				if s.codec.Rate > 0 {
					s.stats.RemoteJitter = time.Duration(float64(r.Jitter) * float64(time.Second) / float64(s.codec.Rate))
				}
			}
		}
	}
	s.mu.Unlock()
}

const rtcpInterval = 5 * time.Second

func (s *rtpSession) rtcpLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(rtcpInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.sendRTCP(true)
			return
		case <-t.C:
			s.sendRTCP(false)
		}
	}
}

// sendRTCP sends a sender report (or a receiver report if we have sent
// nothing) with one report block about the peer's stream, and a BYE at the end.
func (s *rtpSession) sendRTCP(bye bool) {
	s.mu.Lock()
	dst := s.remoteRTCP
	if !dst.IsValid() {
		s.mu.Unlock()
		return
	}
	var blocks []rtcp.ReceptionReport
	if s.recv.Started() {
		frac := s.recv.Interval()
		r := s.recv.Report()
		lost := max(r.Lost, 0)
		var dlsr uint32
		if !s.lastSRAt.IsZero() {
			dlsr = uint32(time.Since(s.lastSRAt).Seconds() * 65536)
		}
		blocks = append(blocks, rtcp.ReceptionReport{
			SSRC: r.SSRC, FractionLost: frac, TotalLost: uint32(min(lost, 0x7FFFFF)),
			LastSequenceNumber: r.HighestSeq, Jitter: r.JitterUnits,
			LastSenderReport: s.lastSR, Delay: dlsr,
		})
	}
	var pkts []rtcp.Packet
	if s.sentAny {
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC: s.ssrc, NTPTime: ntpTime(time.Now()), RTPTime: s.ts,
			PacketCount: uint32(s.stats.PacketsSent), OctetCount: uint32(s.stats.BytesSent - 12*s.stats.PacketsSent),
			Reports: blocks,
		})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: blocks})
	}
	pkts = append(pkts, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "voxgate"}},
	}}})
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{s.ssrc}})
	}
	s.stats.RTCPSent++
	s.mu.Unlock()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	if b, err = s.protectRTCP(b); err != nil {
		return
	}
	_ = s.rtcpSock.writeTo(b, dst)
}

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + 2208988800
	frac := uint64(t.Nanosecond()) * (1 << 32) / 1e9
	return secs<<32 | frac
}
