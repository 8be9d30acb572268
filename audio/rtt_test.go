package audio

import (
	"testing"
	"time"
)

func TestRTTFromReport(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	units := func(d time.Duration) uint32 { return uint32(d.Seconds() * 65536) }
	tests := []struct {
		name      string
		lsr, dlsr uint32
		want      time.Duration
		ok        bool
	}{
		{"no sender report echoed", 0, 0, 0, false},
		{"80 ms", NTPMiddle(now.Add(-1080 * time.Millisecond)), units(time.Second), 80 * time.Millisecond, true},
		{"held 0", NTPMiddle(now.Add(-30 * time.Millisecond)), 0, 30 * time.Millisecond, true},
		{"negative (a peer's bad DLSR)", NTPMiddle(now.Add(-10 * time.Millisecond)), units(time.Second), 0, false},
		{"over a minute", NTPMiddle(now.Add(-2 * time.Minute)), 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RTTFromReport(now, tc.lsr, tc.dlsr)
			if ok != tc.ok || (ok && (got-tc.want).Abs() > time.Millisecond) {
				t.Fatalf("RTTFromReport = %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// RFC 3550 figure 2's example: A 0xb710:8000 (46864.5 s), LSR
	// 0xb705:2000 (46853.125 s), DLSR 0x0005:4000 (5.25 s): RTT 6.125 s.
	if d := int32(uint32(0xb7108000) - 0xb7052000 - 0x00054000); d != int32(6.125*65536) {
		t.Fatalf("the RFC's example gives %d units", d)
	}
}
