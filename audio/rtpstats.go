package audio

import "time"

// ReceiveStats counts one received RTP stream the way RFC 3550 does
// (A.1 sequence numbers, A.3 loss, A.8 interarrival jitter), so that every
// place voxgate shows loss or jitter (the REST API, /metrics, the end of
// call log line, RTCP receiver reports) reads the same numbers, counted
// once, at the socket. It counts every packet of the stream, telephone
// events included: they share the audio's sequence numbers. It is not safe
// for concurrent use and does not allocate.
type ReceiveStats struct {
	started         bool
	ssrc            uint32
	baseSeq, maxSeq uint16
	cycles          uint32
	received        uint64
	expectedPrior   uint64
	receivedPrior   uint64
	transit         int64
	jitter          float64 // in timestamp units
	clockStart      time.Time
	rate            int
}

// ReceiveReport is a snapshot of a ReceiveStats.
type ReceiveReport struct {
	SSRC     uint32
	Received uint64
	// Expected is the packets the sequence numbers say were sent.
	Expected uint64
	// Lost is Expected minus Received (RFC 3550 A.3): negative with
	// duplicates, never counting a late packet twice.
	Lost int64
	// Jitter is the interarrival jitter (RFC 3550 A.8).
	Jitter time.Duration
	// HighestSeq is the extended highest sequence number received.
	HighestSeq uint32
	// JitterUnits is Jitter in RTP timestamp units, for a report block.
	JitterUnits uint32
}

// Update counts a packet that arrived at now, for a stream whose RTP clock
// runs at rate (0: jitter is not measured).
func (r *ReceiveStats) Update(seq uint16, ts, ssrc uint32, now time.Time, rate int) {
	if !r.started || ssrc != r.ssrc {
		*r = ReceiveStats{started: true, ssrc: ssrc, baseSeq: seq, maxSeq: seq, clockStart: now, rate: rate}
		r.received = 1
		r.transit = int64(now.Sub(r.clockStart))*int64(rate)/int64(time.Second) - int64(ts)
		return
	}
	r.rate = rate
	r.received++
	delta := seq - r.maxSeq
	if delta < 0x8000 { // in order, possibly with a gap
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
	if rate == 0 {
		return
	}
	arrival := int64(now.Sub(r.clockStart)) * int64(rate) / int64(time.Second)
	transit := arrival - int64(ts)
	d := transit - r.transit
	r.transit = transit
	if d < 0 {
		d = -d
	}
	r.jitter += (float64(d) - r.jitter) / 16
}

// Started reports whether a packet has been counted.
func (r *ReceiveStats) Started() bool { return r.started }

func (r *ReceiveStats) extMax() uint64 { return uint64(r.cycles) + uint64(r.maxSeq) }

// Report returns the counters.
func (r *ReceiveStats) Report() ReceiveReport {
	if !r.started {
		return ReceiveReport{}
	}
	rep := ReceiveReport{SSRC: r.ssrc, Received: r.received, HighestSeq: uint32(r.extMax()), JitterUnits: uint32(r.jitter)}
	rep.Expected = r.extMax() - uint64(r.baseSeq) + 1
	rep.Lost = int64(rep.Expected) - int64(r.received)
	if r.rate > 0 {
		rep.Jitter = time.Duration(r.jitter * float64(time.Second) / float64(r.rate))
	}
	return rep
}

// Interval returns the fraction of packets lost since the previous call
// (RFC 3550 A.3, an RTCP report block's fraction lost, out of 256), and
// starts a new interval.
func (r *ReceiveStats) Interval() uint8 {
	if !r.started {
		return 0
	}
	expected := r.extMax() - uint64(r.baseSeq) + 1
	expInt := expected - r.expectedPrior
	recvInt := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
		return uint8(min(lostInt<<8/int64(expInt), 255))
	}
	return 0
}
