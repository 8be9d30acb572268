package switchboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// CallRecords keeps the call history: call records with their legs and
// quality, who was in which room when, and the recordings' index. The store
// implements it (cmd/voxgate wires it). The switchboard calls it from one
// goroutine of its own, in order, never from a call's or the media path's
// goroutine and never with a lock held.
type CallRecords interface {
	// CallStarted writes a new record (the call was routed).
	CallStarted(ctx context.Context, r api.CallRecord) error
	// CallAnswered notes when the call was answered.
	CallAnswered(ctx context.Context, id string, at time.Time) error
	// CallEnded closes the record with its cause and legs.
	CallEnded(ctx context.Context, id string, at time.Time, cause api.HangupCause, legs []api.CallLeg) error
	// LegJoined and LegLeft are the room history.
	LegJoined(ctx context.Context, e api.RoomEvent) error
	LegLeft(ctx context.Context, room, leg string, at time.Time) error
	// RecordingStarted and RecordingEnded keep the recordings' index.
	RecordingStarted(ctx context.Context, r api.Recording) error
	RecordingEnded(ctx context.Context, id string, at time.Time, size int64) error
}

// SelfEnder is a leg that may end its call on its own (a SIP session timer
// that expired): the record then says the system ended it, and why.
type SelfEnder interface {
	EndedItself() (reason string, ok bool)
}

// RTTReporter is implemented by legs that measure the round-trip time to
// their peer (from RTCP); the call record shows it and the MOS estimate
// uses it. Legs without it have no RTT in their record.
type RTTReporter interface {
	RTT() time.Duration
}

// BatchWriter is CallRecords that can write many records in one
// transaction (the store does). The journal hands it the writes that queue
// up together, so that a call load costs a commit per batch, not per write.
type BatchWriter interface {
	// WriteBatch runs ops in turn in one transaction, each op with a
	// context that makes its writes part of it; errs[i] is op i's error
	// (an op that fails writes nothing). err is not nil when the
	// transaction failed: with errs nil none of the ops ran, with errs set
	// they ran and nothing of them was kept.
	WriteBatch(ctx context.Context, ops []func(context.Context) error) (errs []error, err error)
}

// journalQueue bounds the writes waiting for the store: when the store is
// slower than the calls for that long, writes are dropped (and counted),
// never waited for.
const journalQueue = 4096

// Batching: while writes come less than journalLinger apart, the journal
// gathers what comes within journalLinger of a batch's first write (at most
// journalBatch) and writes it in one transaction. A write that comes alone
// is written at once. 50 ms rather than 10 cut a call's CPU by about a tenth
// at 200 INVITE/BYE calls a second (BenchmarkE2ESippInviteBye: more calls
// share each commit's WAL pages) and delays the history by as little.
const (
	journalLinger = 50 * time.Millisecond
	journalBatch  = 128
)

// journal writes to CallRecords from one goroutine through a bounded queue,
// so a slow disk never delays a call's goroutine, and records stay in order.
type journal struct {
	rec     CallRecords
	batcher BatchWriter // rec, if it can batch; nil otherwise
	log     *slog.Logger
	ops     chan func(context.Context) error
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
	dropped atomic.Uint64
}

func newJournal(rec CallRecords, log *slog.Logger, queue int) *journal {
	j := &journal{rec: rec, log: log, ops: make(chan func(context.Context) error, queue), done: make(chan struct{})}
	j.batcher, _ = rec.(BatchWriter)
	go j.run()
	return j
}

func (j *journal) run() {
	defer close(j.done)
	batch := make([]func(context.Context) error, 0, journalBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var last time.Time // when the last batch was gathered
	for op := range j.ops {
		batch = append(batch[:0], op)
		if j.batcher != nil {
			batch = j.gather(batch, time.Since(last) < journalLinger, linger)
		}
		last = time.Now()
		j.write(batch)
		clear(batch) // no closure kept alive until the next batch
	}
}

// gather adds to batch what is queued, and while busy also what comes
// within journalLinger, up to journalBatch writes.
func (j *journal) gather(batch []func(context.Context) error, busy bool, linger *time.Timer) []func(context.Context) error {
	if busy {
		linger.Reset(journalLinger)
		defer linger.Stop()
	}
	for len(batch) < journalBatch {
		select {
		case op, ok := <-j.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
			continue
		default:
		}
		if !busy {
			return batch
		}
		select {
		case op, ok := <-j.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// write writes batch: in one transaction when it has more than one write
// and the records can batch, else one write at a time.
func (j *journal) write(batch []func(context.Context) error) {
	if len(batch) > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs, err := j.batcher.WriteBatch(ctx, batch)
		cancel()
		for _, e := range errs {
			if e != nil {
				j.log.Warn("call history: write failed", "error", e)
			}
		}
		if err == nil {
			return
		}
		if errs != nil {
			j.log.Warn("call history: a batch of writes was lost", "writes", len(batch), "error", err)
			return
		}
		j.log.Warn("call history: a batch could not begin; writing one at a time", "writes", len(batch), "error", err)
	}
	for _, op := range batch {
		opCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := op(opCtx); err != nil {
			j.log.Warn("call history: write failed", "error", err)
		}
		cancel()
	}
}

// do queues op; it never blocks. A nil journal (no store) does nothing.
func (j *journal) do(op func(context.Context) error) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	select {
	case j.ops <- op:
	default:
		if j.dropped.Add(1)%100 == 1 {
			j.log.Warn("call history: the store is too slow, writes dropped", "dropped", j.dropped.Load())
		}
	}
}

// close writes what is queued (until ctx ends) and stops.
func (j *journal) close(ctx context.Context) {
	if j == nil {
		return
	}
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.ops)
	}
	j.mu.Unlock()
	select {
	case <-j.done:
	case <-ctx.Done():
	}
}

// callLog is what the switchboard notes about a routed call for its record.
type callLog struct {
	id      string // the record's id
	started time.Time
	answer  atomic.Bool
	mu      sync.Mutex
	cause   *api.HangupCause
	callee  Leg // a dial's answered callee
	calleeT time.Time
}

// newID returns a random record id.
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// ruleRef is a dialplan rule as file:line.
func (s *Switchboard) ruleRef(a dialplan.Action) string {
	if a.Line == 0 {
		return ""
	}
	f := s.planFile
	if f == "" {
		f = "dialplan"
	}
	return f + ":" + strconv.Itoa(a.Line)
}

// callStarted writes the record of a call just routed.
func (s *Switchboard) callStarted(cl *callLog, info api.CallInfo, c Leg, a dialplan.Action) {
	r := api.CallRecord{ID: cl.id, CallID: c.ID(), Origin: info.Origin, Caller: info.From, Callee: info.To, Context: a.Context,
		Rule: s.ruleRef(a), Action: a.Kind, Room: info.Room, User: a.Dial.User, Trunk: a.Dial.Trunk, Started: cl.started}
	s.journal.do(func(ctx context.Context) error { return s.records.CallStarted(ctx, r) })
}

// unrouted writes the record of a call the dialplan had no route for: it
// starts and ends at once.
func (s *Switchboard) unrouted(c Leg, origin, dpContext string, status int, reason string) {
	if s.records == nil {
		return
	}
	now := time.Now().UTC()
	r := api.CallRecord{ID: newID("call_"), CallID: c.ID(), Origin: origin, Caller: c.Caller(), Callee: c.Dialed(), Context: dpContext,
		Action: "reject", Started: now}
	cause := api.HangupCause{By: "dialplan", Status: status, Reason: reason}
	s.journal.do(func(ctx context.Context) error {
		if err := s.records.CallStarted(ctx, r); err != nil {
			return err
		}
		return s.records.CallEnded(ctx, r.ID, now, cause, nil)
	})
}

// logOf returns the record notes of the routed call c (nil: not routed).
func (s *Switchboard) logOf(c Leg) *callLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ac := s.calls[c.ID()]; ac != nil && ac.leg == c {
		return ac.log
	}
	return nil
}

// recordAnswered writes the answer time of a call's record (once).
func (s *Switchboard) recordAnswered(cl *callLog, at time.Time) {
	if cl == nil || cl.answer.Swap(true) {
		return
	}
	id := cl.id
	s.journal.do(func(ctx context.Context) error { return s.records.CallAnswered(ctx, id, at) })
}

// setCause notes why c ends; the first cause noted wins.
func (s *Switchboard) setCause(c Leg, by string, status int, reason string) {
	cl := s.logOf(c)
	if cl == nil {
		return
	}
	cl.mu.Lock()
	if cl.cause == nil {
		cl.cause = &api.HangupCause{By: by, Status: status, Reason: reason}
	}
	cl.mu.Unlock()
}

// setCallee notes a dial's answered callee, whose leg the record shows.
func (s *Switchboard) setCallee(c, callee Leg) {
	if cl := s.logOf(c); cl != nil {
		cl.mu.Lock()
		cl.callee, cl.calleeT = callee, time.Now().UTC()
		cl.mu.Unlock()
	}
}

// callEnded closes c's record: its legs' quality is read now (counters in
// memory, no I/O), the write is queued.
func (s *Switchboard) callEnded(cl *callLog, c Leg) {
	end := time.Now().UTC()
	cl.mu.Lock()
	cause := api.HangupCause{By: "caller"}
	selfReason, selfEnded := "", false
	if se, ok := c.(SelfEnder); ok {
		selfReason, selfEnded = se.EndedItself()
	}
	if cl.cause != nil {
		cause = *cl.cause
	} else if selfEnded {
		cause = api.HangupCause{By: "system", Reason: selfReason}
	} else if !isDone(c) {
		cause = api.HangupCause{By: "system"}
	}
	callee, calleeT := cl.callee, cl.calleeT
	cl.mu.Unlock()
	legs := []api.CallLeg{legRecord(c, "caller", c.Caller(), cl.started, end)}
	if callee != nil {
		legs = append(legs, legRecord(callee, "callee", callee.Caller(), calleeT, end))
	}
	id := cl.id
	s.journal.do(func(ctx context.Context) error { return s.records.CallEnded(ctx, id, end, cause, legs) })
}

// errMaxDuration ends the context of a call at its context's max_duration.
var errMaxDuration = errors.New("maximum call duration reached")

// endedByContext notes why a call's context ended as its hang-up cause,
// unless the leg had ended already (the caller hung up, or the leg ended
// itself): then that is the cause, found when the record is closed.
func (s *Switchboard) endedByContext(ctx context.Context, c Leg) {
	if isDone(c) {
		return
	}
	if se, ok := c.(SelfEnder); ok {
		if _, ended := se.EndedItself(); ended { // it is hanging up on its own (a session timer)
			return
		}
	}
	reason := "voxgate stopping or the call's context ended"
	if errors.Is(context.Cause(ctx), errMaxDuration) {
		reason = errMaxDuration.Error()
	}
	s.setCause(c, "system", 0, reason)
}

func isDone(c Leg) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// legRecord reads a leg's codec and quality from its counters.
func legRecord(l Leg, role, name string, joined, left time.Time) api.CallLeg {
	codec := l.Codec()
	out := api.CallLeg{ID: l.ID(), Role: role, Name: name, Codec: codec.Name, Rate: codec.Rate, Joined: joined, Left: &left}
	q := &out.Quality
	var jitter, rtt time.Duration
	if rr, ok := l.(bridge.ReceiveReporter); ok {
		r := rr.ReceiveReport()
		q.PacketsReceived, q.PacketsExpected, q.Lost = r.Received, r.Expected, r.Lost
		if r.Expected > 0 && r.Lost > 0 {
			q.LossPercent = round2(float64(r.Lost) / float64(r.Expected) * 100)
		}
		jitter = r.Jitter
		q.JitterMS = round2(ms(r.Jitter))
	}
	if rl, ok := l.(bridge.RemoteLossReporter); ok {
		q.RemoteLossPercent = round2(rl.RemoteLoss() * 100)
	}
	if rt, ok := l.(RTTReporter); ok && rt.RTT() > 0 { // 0: not measured
		rtt = rt.RTT()
		v := round2(ms(rtt))
		q.RTTMS = &v
	}
	if q.PacketsReceived > 0 { // no media, no estimate (MOS 0)
		q.MOS = round2(EstimateMOS(codec.Name, max(q.LossPercent, q.RemoteLossPercent), EstimateDelay(rtt, jitter)))
	}
	return out
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// recording is a recording in progress, for the index.
type recording struct {
	id, path string
}

// recordingStarted adds a recording just started to the index.
func (s *Switchboard) recordingStarted(room, path string) {
	if s.records == nil {
		return
	}
	r := api.Recording{ID: newID("rec_"), Room: room, Path: path, Start: time.Now().UTC()}
	s.mu.Lock()
	s.recs[room] = recording{id: r.ID, path: path}
	s.mu.Unlock()
	s.journal.do(func(ctx context.Context) error { return s.records.RecordingStarted(ctx, r) })
}

// recordingEnded notes the end of room's recording (its size is read by the
// journal's goroutine).
func (s *Switchboard) recordingEnded(room string) {
	s.mu.Lock()
	rec, ok := s.recs[room]
	delete(s.recs, room)
	s.mu.Unlock()
	if !ok {
		return
	}
	at := time.Now().UTC()
	s.journal.do(func(ctx context.Context) error {
		var size int64
		if st, err := os.Stat(rec.path); err == nil {
			size = st.Size()
		}
		return s.records.RecordingEnded(ctx, rec.id, at, size)
	})
}

// stopRecording stops room's recording and notes it in the index.
func (s *Switchboard) stopRecording(room *bridge.Room) error {
	err := room.StopRecording()
	s.recordingEnded(room.Name())
	return err
}

// legJoined and legLeft are the room history.
func (s *Switchboard) legJoined(room string, c Leg) {
	if s.records == nil {
		return
	}
	e := api.RoomEvent{Room: room, Leg: c.ID(), Name: c.Caller(), Joined: time.Now().UTC()}
	if cl := s.logOf(c); cl != nil {
		e.CallID = cl.id
	}
	s.journal.do(func(ctx context.Context) error { return s.records.LegJoined(ctx, e) })
}

func (s *Switchboard) legLeft(room string, c Leg) {
	if s.records == nil {
		return
	}
	id, at := c.ID(), time.Now().UTC()
	s.journal.do(func(ctx context.Context) error { return s.records.LegLeft(ctx, room, id, at) })
}
