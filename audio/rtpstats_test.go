package audio

import (
	"testing"
	"time"
)

// Loss as RFC 3550 A.3 counts it: expected (from sequence numbers) minus
// received, so a late packet is not lost twice, a duplicate makes it
// negative, and the count survives a sequence number wrap.
func TestReceiveStatsLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seqs     []uint16
		lost     int64
		expected uint64
	}{
		{"in order", []uint16{1, 2, 3, 4}, 0, 4},
		{"a gap", []uint16{1, 2, 5, 6}, 2, 6},
		{"reordered", []uint16{1, 3, 2, 4}, 0, 4},
		{"late after a gap", []uint16{1, 2, 4, 5, 3}, 0, 5},
		{"duplicate", []uint16{1, 2, 2, 3}, -1, 3},
		{"wrap", []uint16{65534, 65535, 0, 2}, 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r ReceiveStats
			now := time.Unix(100, 0)
			for _, s := range tc.seqs {
				r.Update(s, uint32(s)*160, 7, now, 8000)
				now = now.Add(20 * time.Millisecond)
			}
			rep := r.Report()
			if rep.Lost != tc.lost || rep.Expected != tc.expected {
				t.Fatalf("lost %d of %d expected, want %d of %d", rep.Lost, rep.Expected, tc.lost, tc.expected)
			}
		})
	}
}

// Jitter in RTP units and as a duration; zero for a steady stream, and the
// interval's fraction lost out of 256.
func TestReceiveStatsJitterAndInterval(t *testing.T) {
	var r ReceiveStats
	now := time.Unix(100, 0)
	for i := range 100 {
		if i%10 == 5 { // 10 % lost
			continue
		}
		d := time.Duration(0)
		if i%2 == 1 {
			d = 10 * time.Millisecond
		}
		r.Update(uint16(i), uint32(i)*160, 7, now.Add(time.Duration(i)*20*time.Millisecond+d), 8000)
	}
	rep := r.Report()
	if rep.Jitter < 5*time.Millisecond || rep.Jitter > 11*time.Millisecond {
		t.Fatalf("jitter %v with 10 ms alternating delay", rep.Jitter)
	}
	if f := r.Interval(); f < 20 || f > 30 {
		t.Fatalf("fraction lost %d/256, want about 26", f)
	}
	if f := r.Interval(); f != 0 {
		t.Fatalf("a new interval with nothing received reports %d", f)
	}
}
