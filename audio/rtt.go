package audio

import "time"

// RTTFromReport is the round-trip time from an RTCP report block received
// at arrival that echoes one of our sender reports (RFC 3550 section 6.4.1:
// A - LSR - DLSR, where A is the middle 32 bits of the arrival's NTP time,
// all in units of 1/65536 s). It reports false when the block echoes no
// sender report (LSR 0) or the figure is impossible (negative, or over a
// minute: a peer's clock or arithmetic gone wrong).
func RTTFromReport(arrival time.Time, lsr, dlsr uint32) (time.Duration, bool) {
	if lsr == 0 {
		return 0, false
	}
	a := NTPMiddle(arrival)
	d := int32(a - lsr - dlsr)
	if d < 0 || d > 60*65536 {
		return 0, false
	}
	return time.Duration(int64(d) * int64(time.Second) / 65536), true
}

// NTPMiddle is the middle 32 bits of t as a 64-bit NTP timestamp (16 bits
// of seconds, 16 of fraction): what a report block's LSR holds.
func NTPMiddle(t time.Time) uint32 {
	secs := uint64(t.Unix()) + 2208988800
	frac := uint64(t.Nanosecond()) * (1 << 32) / 1e9
	return uint32((secs<<32 | frac) >> 16)
}
