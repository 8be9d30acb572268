package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// batchLog is a BatchWriter that notes which writes ran in which batch
// (0: alone, outside a batch).
type batchLog struct {
	CallRecords // not called: the tests' writes note themselves
	mu          sync.Mutex
	batches     int
	ran         [][2]int // write, batch
	failBegin   bool
}

type batchNo struct{}

func (b *batchLog) WriteBatch(ctx context.Context, ops []func(context.Context) error) ([]error, error) {
	if b.failBegin {
		return nil, errors.New("cannot begin")
	}
	b.mu.Lock()
	b.batches++
	ctx = context.WithValue(ctx, batchNo{}, b.batches)
	b.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = op(ctx)
	}
	return errs, nil
}

// write returns a write that notes itself, after waiting for gate (if not
// nil) and saying it started on started (if not nil).
func (b *batchLog) write(n int, started chan<- struct{}, gate <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		if started != nil {
			close(started)
		}
		if gate != nil {
			<-gate
		}
		no, _ := ctx.Value(batchNo{}).(int)
		b.mu.Lock()
		b.ran = append(b.ran, [2]int{n, no})
		b.mu.Unlock()
		return nil
	}
}

// A write that comes alone is written alone; the writes that queued up
// behind a slow one are written together, in one batch, in order; and a
// batch that cannot begin is written one write at a time.
func TestJournalBatches(t *testing.T) {
	for _, failBegin := range []bool{false, true} {
		rec := &batchLog{failBegin: failBegin}
		j := newJournal(rec, slog.New(slog.DiscardHandler), 64)
		started, gate := make(chan struct{}), make(chan struct{})
		j.do(rec.write(0, started, gate))
		<-started // write 0 is being written: the next ones queue up
		for i := 1; i <= 10; i++ {
			j.do(rec.write(i, nil, nil))
		}
		close(gate)
		time.Sleep(4 * journalLinger) // well past the linger: a quiet journal again
		j.do(rec.write(11, nil, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		j.close(ctx)
		cancel()
		want := [][2]int{{0, 0}}
		for i := 1; i <= 10; i++ {
			want = append(want, [2]int{i, 1})
		}
		want = append(want, [2]int{11, 0})
		if failBegin {
			for i := range want {
				want[i][1] = 0
			}
		}
		if !slices.Equal(rec.ran, want) {
			t.Errorf("failBegin %v: writes (write, batch) %v, want %v", failBegin, rec.ran, want)
		}
	}
}
