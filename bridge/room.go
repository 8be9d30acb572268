package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// Errors of rooms.
var (
	ErrLocked    = errors.New("room is locked")
	ErrFull      = errors.New("room is full")
	ErrNoLeg     = errors.New("no such leg in the room")
	ErrDuplicate = errors.New("leg already in the room")
	ErrClosed    = errors.New("room is closed")
)

// Event is something that happened in a room, for the web page and the API.
type Event struct {
	Room string
	Leg  string
	// Type: "joined", "left", "kicked", "talking", "stopped-talking".
	Type string
	At   time.Time
}

// RoomConfig configures a room.
type RoomConfig struct {
	Name string
	// Rate is the mixing rate, one of audio.MixRates (default 16000).
	Rate int
	// Max is the most legs at once (0: no limit).
	Max int
	// JoinTone and LeaveTone are played to the room when a leg joins or
	// leaves (nil: the default beeps; use NoTone for none).
	JoinTone, LeaveTone *audio.WAV
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Events receives the room's events; sends never block (a full channel
	// loses events).
	Events chan<- Event
	// ManualClock: the room does not tick by itself; the caller (tests)
	// calls Tick with a simulated time, and Now returns that time.
	ManualClock bool
	// Clock drives the room's ticks (default DefaultClock(): shared by
	// every room of the process).
	Clock *Clock
	// Meter, when set, counts the room's media for /metrics (shared by
	// many rooms: a Rooms template's, a switchboard's).
	Meter *Meter
}

// NoTone is a WAV with no samples: no join or leave tone.
var NoTone = &audio.WAV{Rate: 8000}

// member is a leg in a room.
type member struct {
	id      string
	leg     Leg
	in      *ingress
	out     *egress       // a queue and a goroutine for a QueuedWriter; nil: written from the tick
	sent    uint64        // frames written to the leg from the tick
	failed  atomic.Uint64 // frames the leg refused (ended, too big); read by a Meter
	tally   *tally        // its counts in the room's Meter (nil: none)
	enc     encoder       // its own encoder, for its own mix
	conv    *retimer      // room rate -> encoder rate
	group   *group
	vad     *audio.VAD
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	muted   bool
	deaf    bool
	gain    float32 // linear
	talking bool
	level   float64
	input   []int16 // this tick's contribution, after gain
	mix     []int16 // this tick's mix-minus output
	pcm     []int16 // encoder-rate scratch
	payload []byte
	prompt  *prompt
	joined  time.Time
	quiet   int        // ticks in a row this leg was sent silence
	dtx     bool       // the leg takes gaps in silence: its codec allows it, its far end too
	cn      bool       // ... because its far end took comfort noise (looked at again every dtxEvery ticks)
	digits  DTMFSender // the leg, when it sends digits in its media stream
	gap     uint32     // RTP clock units of a DTX gap not yet written
	// onShared: the leg's last frame came from its group's shared encoder,
	// so its decoder follows that encoder's history.
	onShared bool
	loss     int // the packet loss percentage its own encoder is tuned for (-1: default)
	// converge counts ticks the leg's own encoder still encodes the shared
	// mix after the leg went quiet, so that its history matches the shared
	// encoder's before the leg's stream moves over to it.
	converge int
	tap      *tap // a bot forking the leg's audio (tap.go); nil: none
}

// group is every listener on one codec and rate: they hear the same mix and
// share one encode per tick.
type group struct {
	key     string
	enc     encoder
	conv    *retimer // room rate -> encoder rate
	samples uint32   // RTP clock units per tick
	pcm     []int16
	payload []byte
	// silent is the encoded silence for deaf legs and silent rooms.
	silent []byte
	// dtx: the codec's receivers take gaps in silence (Opus).
	dtx bool
	// used is the last tick the shared encoder encoded: when it is not the
	// previous one, no leg follows its history and a leg coming back may
	// hand it its own.
	used uint64
	// loss and lastLoss: the worst loss its listeners report, and what the
	// encoder is tuned for (-1: the codec's default).
	loss, lastLoss int
}

// prompt is a WAV being played, already at the room rate.
type prompt struct {
	pcm  []int16
	pos  int
	rate int // of pcm: the room's configured rate, until the room mixes at another
}

func (p *prompt) mixInto(dst []int16) bool {
	n := min(len(dst), len(p.pcm)-p.pos)
	for i := 0; i < n; i++ {
		dst[i] = audio.SoftLimit(int32(dst[i]) + int32(p.pcm[p.pos+i]))
	}
	p.pos += n
	return p.pos < len(p.pcm)
}

// Room mixes its legs: each hears everyone but itself.
type Room struct {
	cfg   RoomConfig
	log   *slog.Logger
	frame int // samples per tick at rate
	rate  int // the mixing rate now: cfg.Rate, or NarrowRate (see narrow.go)

	mu        sync.Mutex
	members   []*member
	groups    map[string]*group
	groupList []*group // the same, to walk each tick without a map iteration
	locked    bool
	closed    bool
	mixer     *audio.MixMinus
	zero      []int16 // a frame of silence, never written
	inputs    [][]int16
	outs      [][]int16
	prompt    *prompt
	rec       *recorder
	ticks     uint64
	tickTime  time.Duration // total time spent in ticks
	simNow    atomic.Int64  // the ManualClock time, unix nanoseconds
	// noStateCopy (tests) turns off the encoder hand-over (and the
	// convergence), the behaviour before it, to measure what it avoids.
	noStateCopy bool
	noDoze      bool // tests: never doze, to compare
	running     bool // driven by the clock
	// A room where every leg has been silent for dozeAfter ticks, all on
	// DTX codecs, dozes: it skips its ticks but one in dtxEvery, which
	// sends each leg its DTX packet, until a leg sends something that is
	// not silence (stir) or the room changes.
	dozing    atomic.Bool
	stir      atomic.Bool
	hush      int                    // silent, dozable ticks in a row
	doze      uint64                 // ticks since the room began to doze
	dozes     uint64                 // times it did
	worker    *worker                // the clock's worker driving the room while running
	wk        atomic.Pointer[worker] // the same, for ingress to wake a dozing room
	tickAt    time.Time              // the scheduled time of the last tick
	inTick    bool
	ticked    uint64 // ticks run (tests)
	joinPCM   []int16
	leavePCM  []int16
	promptBuf []int16
	narrowing
}

// NewRoom returns an empty room; its clock starts with the first leg.
func NewRoom(cfg RoomConfig) (*Room, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 16000
	}
	if err := audio.CheckMixRate(cfg.Rate); err != nil {
		return nil, fmt.Errorf("room %q: %w", cfg.Name, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = DefaultClock()
	}
	r := &Room{cfg: cfg, log: cfg.Logger.With("room", cfg.Name), frame: cfg.Rate / 50, rate: cfg.Rate, groups: map[string]*group{}}
	r.mixer = audio.NewMixMinus(r.frame)
	r.zero = make([]int16, r.frame)
	r.promptBuf = make([]int16, r.frame)
	var err error
	if r.joinPCM, err = toneOrWAV(cfg.JoinTone, cfg.Rate, 660); err != nil {
		return nil, err
	}
	if r.leavePCM, err = toneOrWAV(cfg.LeaveTone, cfg.Rate, 440); err != nil {
		return nil, err
	}
	return r, nil
}

// toneOrWAV returns w at rate, or a 150 ms beep at freq when w is nil.
func toneOrWAV(w *audio.WAV, rate int, freq float64) ([]int16, error) {
	if w == nil {
		pcm := make([]int16, rate*15/100)
		(&audio.Tone{Rate: rate, Freq: freq, Level: 0.1}).Fill(pcm)
		return pcm, nil
	}
	return resampleWAV(w, rate)
}

// resampleWAV converts a prompt to rate.
func resampleWAV(w *audio.WAV, rate int) ([]int16, error) {
	if len(w.Samples) == 0 || w.Rate == rate {
		return w.Samples, nil
	}
	frame := w.Rate / 50
	rs, err := audio.NewResampler(w.Rate, rate, frame)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, len(w.Samples)*rate/w.Rate+rate/50)
	for off := 0; off < len(w.Samples); off += frame {
		chunk := w.Samples[off:min(off+frame, len(w.Samples))]
		if len(chunk) < frame {
			chunk = append(append([]int16(nil), chunk...), make([]int16, frame-len(chunk))...)
		}
		out = rs.Process(out, chunk)
	}
	return out, nil
}

// Name is the room's name.
func (r *Room) Name() string { return r.cfg.Name }

// Rate is the mixing rate.
func (r *Room) Rate() int { return r.cfg.Rate }

// Now is the room's clock: real time, or the simulated time of ManualClock.
func (r *Room) Now() time.Time {
	if r.cfg.ManualClock {
		return time.Unix(0, r.simNow.Load())
	}
	return time.Now()
}

func (r *Room) emit(leg, typ string) {
	if r.cfg.Events == nil {
		return
	}
	select {
	case r.cfg.Events <- Event{Room: r.cfg.Name, Leg: leg, Type: typ, At: time.Now()}:
	default:
	}
}

// JoinOptions set a leg's state on entry.
type JoinOptions struct {
	Muted, Deaf bool
	// GainDB changes the leg's volume as others hear it.
	GainDB float64
}

// Join adds a leg. It fails when the room is locked or full, or the leg's
// codec cannot be transcoded. The leg leaves by itself when it ends.
func (r *Room) Join(leg Leg, o JoinOptions) error {
	// A packet's arrival time: the real clock reads nothing of the room,
	// which in a dozing room is not in the CPU's cache when a packet comes.
	now := time.Now
	if r.cfg.ManualClock {
		now = r.Now
	}
	in, err := newIngress(leg, r.cfg.Rate, now)
	if err != nil {
		return err
	}
	c := leg.Codec()
	enc, err := newEncoder(c, r.cfg.Rate)
	if err != nil {
		return err
	}
	m := &member{id: leg.ID(), leg: leg, in: in, enc: enc,
		vad: audio.NewVAD(audio.VADConfig{}), loss: -1, muted: o.Muted, deaf: o.Deaf,
		gain: float32(math.Pow(10, o.GainDB/20)), joined: time.Now()}
	if m.conv, err = r.newEgressConv(enc.rate()); err != nil {
		return err
	}
	if err := r.followRate(in.conv, true); err != nil {
		return err
	}
	m.input = make([]int16, r.cfg.Rate/50) // resliced to the mixing rate's frame
	m.mix = make([]int16, r.cfg.Rate/50)
	m.pcm = make([]int16, 0, enc.rate()/50)
	m.payload = make([]byte, 0, 1500)

	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.locked:
		r.mu.Unlock()
		return ErrLocked
	case r.cfg.Max > 0 && len(r.members) >= r.cfg.Max:
		r.mu.Unlock()
		return ErrFull
	}
	for _, x := range r.members {
		if x.id == m.id {
			r.mu.Unlock()
			return ErrDuplicate
		}
	}
	if m.group, err = r.groupFor(c, enc.rate()); err != nil {
		r.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if queueWrites(leg) {
		m.out = newEgress(leg)
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.out.run(ctx) }()
	}
	m.wg.Add(1)
	go func() { // a leg that ends leaves
		defer m.wg.Done()
		select {
		case <-leg.Done():
			go r.remove(m.id, "left")
		case <-ctx.Done():
		}
	}()
	m.in.dozing, m.in.stir, m.in.wake = &r.dozing, &r.stir, r.alarm
	r.fitMemberLocked(m)
	m.cn = !(m.group.dtx && acceptsDTX(leg)) && takesCN(leg)
	m.dtx = m.group.dtx && acceptsDTX(leg) || m.cn
	m.digits, _ = leg.(DTMFSender)
	m.tally = r.cfg.Meter.attach(leg, m.in, m.dropped)
	r.wakeLocked()
	r.members = append(r.members, m)
	r.inputs = append(r.inputs, nil)
	r.outs = append(r.outs, m.mix)
	if len(r.joinPCM) > 0 && len(r.members) > 1 {
		r.prompt = &prompt{pcm: r.joinPCM, rate: r.cfg.Rate}
	}
	r.startClockLocked()
	n := len(r.members)
	r.mu.Unlock()
	leg.SetPacketHandler(m.in)
	r.log.Info("leg joined", "leg", m.id, "codec", c.Name, "legs", n)
	r.emit(m.id, "joined")
	return nil
}

// groupFor returns the listeners' group for a codec, creating it.
func (r *Room) groupFor(c audio.Codec, encRate int) (*group, error) {
	info, err := lookupCodec(c)
	if err != nil {
		return nil, err
	}
	key := info.Name + "/" + fmt.Sprint(encRate) // the canonical name: "opus" and "OPUS" share
	if g := r.groups[key]; g != nil {
		return g, nil
	}
	enc, err := newEncoder(c, r.cfg.Rate)
	if err != nil {
		return nil, err
	}
	g := &group{key: key, enc: enc, samples: uint32(c.Rate / 50), pcm: make([]int16, 0, encRate/50), payload: make([]byte, 0, 1500), dtx: info.DTX, lastLoss: -1}
	if g.conv, err = r.newEgressConv(encRate); err != nil {
		return nil, err
	}
	if err = g.conv.setRoomRate(r.rate, r.naiveSwitch); err != nil {
		return nil, err
	}
	// Silence comes from an encoder of its own: the shared one starts
	// fresh, like the encoders it hands its history to.
	quietEnc, err := newEncoder(c, r.cfg.Rate)
	if err != nil {
		return nil, err
	}
	if g.silent, err = quietEnc.encode(nil, make([]int16, encRate/50)); err != nil {
		return nil, err
	}
	r.groups[key] = g
	r.groupList = append(r.groupList, g)
	return g, nil
}

// Leave removes a leg (it keeps its call; the caller decides what next).
func (r *Room) Leave(id string) error { return r.remove(id, "left") }

// Kick removes a leg and reports it as kicked.
func (r *Room) Kick(id string) error { return r.remove(id, "kicked") }

func (r *Room) remove(id, why string) error {
	r.mu.Lock()
	idx := -1
	for i, m := range r.members {
		if m.id == id {
			idx = i
		}
	}
	if idx < 0 {
		r.mu.Unlock()
		return ErrNoLeg
	}
	m := r.members[idx]
	r.wakeLocked()
	r.members = append(r.members[:idx], r.members[idx+1:]...)
	r.inputs = r.inputs[:len(r.members)]
	r.outs = append(r.outs[:idx], r.outs[idx+1:]...)
	if len(r.leavePCM) > 0 && len(r.members) > 0 {
		r.prompt = &prompt{pcm: r.leavePCM, rate: r.cfg.Rate}
	}
	if m.talking {
		m.talking = false
		defer r.emit(id, "stopped-talking")
	}
	empty := len(r.members) == 0
	r.mu.Unlock()
	m.leg.SetPacketHandler(nil)
	m.cancel()
	m.wg.Wait()
	r.cfg.Meter.detach(m.tally)
	if empty {
		r.stopClock()
	}
	r.log.Info("leg "+why, "leg", id)
	r.emit(id, why)
	return nil
}

func (r *Room) member(id string) (*member, error) {
	for _, m := range r.members {
		if m.id == id {
			return m, nil
		}
	}
	return nil, ErrNoLeg
}

// Mute stops (or restores) what others hear of a leg.
func (r *Room) Mute(id string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(id)
	if err == nil {
		m.muted = on
	}
	return err
}

// Deafen stops (or restores) what a leg hears.
func (r *Room) Deafen(id string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(id)
	if err == nil {
		m.deaf = on
	}
	return err
}

// SetGain sets a leg's volume as others hear it, in dB.
func (r *Room) SetGain(id string, db float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(id)
	if err == nil {
		m.gain = float32(math.Pow(10, db/20))
	}
	return err
}

// Lock refuses (or again admits) new legs.
func (r *Room) Lock(on bool) {
	r.mu.Lock()
	r.locked = on
	r.mu.Unlock()
}

// SetMax changes the most legs at once (0: no limit); legs already in stay.
func (r *Room) SetMax(n int) {
	r.mu.Lock()
	r.cfg.Max = n
	r.mu.Unlock()
}

// Len is the number of legs.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// PlayToRoom plays a prompt to every leg.
func (r *Room) PlayToRoom(w *audio.WAV) error {
	pcm, err := resampleWAV(w, r.cfg.Rate)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.prompt = &prompt{pcm: pcm, rate: r.cfg.Rate}
	r.wakeLocked()
	r.mu.Unlock()
	return nil
}

// PlayToLeg plays a prompt to one leg only (a PIN prompt, an announcement).
func (r *Room) PlayToLeg(id string, w *audio.WAV) error {
	pcm, err := resampleWAV(w, r.cfg.Rate)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(id)
	if err == nil {
		m.prompt = &prompt{pcm: pcm, rate: r.cfg.Rate}
		r.wakeLocked()
	}
	return err
}

func (r *Room) startClockLocked() {
	if r.running || r.cfg.ManualClock {
		return
	}
	r.running = true
	r.worker = r.cfg.Clock.add(r)
	r.wk.Store(r.worker)
}

// alarm has the room's worker tick it at its next tick: a dozing room's
// worker skips its ticks until then.
func (r *Room) alarm() {
	if w := r.wk.Load(); w != nil {
		w.wake(r)
	}
}

// stopClock stops the room's ticks once it is empty. It holds the room's
// lock while it takes the room off its worker, so a Join racing with it
// either finds the clock running or starts it again.
func (r *Room) stopClock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running || len(r.members) > 0 {
		return
	}
	r.running = false
	r.worker.remove(r)
	r.worker = nil
	r.wk.Store(nil)
}

// tick is the clock's call: one step, unless the room stopped meanwhile.
func (r *Room) tick(at time.Time) { r.tickIdle(at) }

// tickIdle runs a tick and returns how many ticks the clock's worker may
// skip after it: a dozing room that nothing stirred needs only the ticks
// that send its DTX packets.
func (r *Room) tickIdle(at time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return 0
	}
	if r.dozing.Load() && !r.tickAt.IsZero() {
		// The ticks the worker skipped since the last one are dozed ticks.
		if k := at.Sub(r.tickAt)/FrameDuration - 1; k > 0 {
			r.doze += uint64(k)
		}
	}
	r.tickAt, r.inTick = at, true
	r.ticked++
	r.stepLocked(at)
	r.inTick = false
	if !r.dozing.Load() || r.stir.Load() {
		return 0
	}
	return int(dtxEvery - 1 - r.doze%dtxEvery)
}

// stepLocked runs one tick, or a doze while the room dozes and no leg has
// stirred it.
func (r *Room) stepLocked(at time.Time) {
	if r.dozing.Load() {
		if !r.stir.Load() {
			r.dozeLocked(at)
			return
		}
		r.wakeLocked()
	}
	r.tickLocked(at)
}

// dozeAfter is how long a room must be silent before it dozes.
const dozeAfter = 25

// dozeLocked is a dozing room's tick: nothing, but every dtxEvery ticks
// each leg gets its DTX packet (after the gap's worth of RTP clock) and
// the silence its legs sent meanwhile is played out, undecoded.
func (r *Room) dozeLocked(now time.Time) {
	r.doze++
	if r.doze%dtxEvery != 0 {
		return
	}
	for _, m := range r.members {
		if m.digits != nil && m.digits.SendingDTMF() {
			r.stir.Store(true) // a digit to send: tick every 20 ms again
		}
		m.in.drain(now)
		m.gap += (dtxEvery - 1) * m.group.samples
		if !m.stillCN() {
			r.stir.Store(true) // it needs a frame every tick again
		}
		m.send(m.group.silent, m.group.samples)
	}
}

// wakeLocked ends a doze: the legs' RTP clocks get the ticks dozed since
// the last DTX packet, and the room ticks again.
func (r *Room) wakeLocked() {
	if !r.dozing.Load() {
		return
	}
	if !r.inTick && r.running && !r.tickAt.IsZero() {
		// Woken between ticks (a join, a prompt): the ticks its worker
		// skipped so far were dozed, and the worker must tick it again.
		if k := time.Since(r.tickAt) / FrameDuration; k > 0 {
			r.doze += uint64(k)
		}
		r.tickAt = time.Time{}
		r.alarm()
	}
	for _, m := range r.members {
		m.gap += uint32(r.doze%dtxEvery) * m.group.samples
		m.quiet = 1 // the next silence is a gap, not a packet at once
	}
	r.dozing.Store(false)
	r.stir.Store(false)
	r.hush = 0
}

// dozableLocked reports whether nothing in the room needs a tick but
// silence to DTX legs: no prompt, no recording, every leg on a DTX codec,
// none converging its encoder.
func (r *Room) dozableLocked() bool {
	if r.prompt != nil || r.rec != nil || r.noDoze {
		return false
	}
	for _, m := range r.members {
		if !m.dtx || m.prompt != nil || m.converge > 0 || m.tap != nil { // a tap gets every tick
			return false
		}
	}
	return true
}

// Close removes every leg, stops the clock and any recording. Idempotent.
func (r *Room) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ids := make([]string, 0, len(r.members))
	for _, m := range r.members {
		ids = append(ids, m.id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		_ = r.remove(id, "left")
	}
	r.stopClock()
	return r.StopRecording()
}

// Tick runs one 20 ms mixing step: pull every leg's frame, mix-minus, encode
// once per group of listeners and once per talker, queue the payloads.
// A room on a clock ticks by itself; Tick is for ManualClock rooms.
func (r *Room) Tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.ManualClock {
		r.simNow.Store(now.UnixNano())
	}
	r.stepLocked(now)
}

func (r *Room) tickLocked(now time.Time) {
	t0 := time.Now()
	r.fitRateLocked()
	voices := 0
	for k, m := range r.members {
		r.inputs[k] = nil
		f := m.in.pull(now)
		if f == nil {
			r.talkLocked(m, false)
			m.level = -127
			continue
		}
		talking, _ := m.vad.Update(f)
		m.level = m.vad.Level()
		r.talkLocked(m, talking)
		if m.muted || m.level < -70 {
			continue
		}
		if m.gain == 1 {
			copy(m.input, f)
		} else {
			for i, v := range f {
				m.input[i] = audio.SoftLimit(int32(float32(v) * m.gain))
			}
		}
		r.inputs[k] = m.input
		voices++
	}
	// Nobody says anything: no mix to make, and listeners get silence
	// encoded once for the room's life (or, for DTX codecs, a gap).
	silentRoom := voices == 0 && r.prompt == nil
	if silentRoom && r.dozableLocked() {
		if r.hush++; r.hush >= dozeAfter {
			r.doze, r.hush = 0, 0
			r.stir.Store(false)
			r.dozing.Store(true)
			r.dozes++
		}
	} else {
		r.hush = 0
	}
	shared := r.zero
	if voices > 0 {
		shared = r.mixer.Mix(r.inputs, r.outs)
	}
	hasPrompt := false
	if r.prompt != nil {
		if voices == 0 {
			shared = r.mixer.Mix(r.inputs, r.outs) // zeros, in a buffer the prompt may be added to
		}
		clear(r.promptBuf)
		if !r.prompt.mixInto(r.promptBuf) {
			r.prompt = nil
		}
		hasPrompt = true
		addInto(shared, r.promptBuf)
	}
	if r.rec != nil {
		r.rec.write(shared, r.members, r.inputs)
	}
	// Listeners: one encode per group, only if someone in it listens.
	for _, g := range r.groupList {
		g.payload = g.payload[:0]
	}
	// A listener that starts talking (or gets a prompt of its own) moves to
	// its own encoder: that encoder first takes over the shared encoder's
	// history, before the shared one encodes this tick, so the leg's
	// decoder sees one continuous stream.
	for k, m := range r.members {
		own := (r.inputs[k] != nil || m.prompt != nil) && !(m.deaf && m.prompt == nil)
		if own && m.onShared {
			if !r.noStateCopy {
				m.enc.copyFrom(m.group.enc)
				m.conv.copyFrom(m.group.conv)
			}
			m.onShared = false
		}
	}
	for k, m := range r.members {
		if m.tap != nil { // tap.go
			m.tap.heard = r.hearsLocked(k, m, silentRoom, shared)
		}
		switch {
		case m.deaf && m.prompt == nil, silentRoom && m.prompt == nil:
			m.sendSilence()
			m.onShared, m.converge = false, 0
		case voices == 1 && r.inputs[k] != nil && !hasPrompt && m.prompt == nil:
			// The only voice in the room: its mix-minus is silence, sent
			// as such (a DTX gap, or the codec's silent frame) rather than
			// encoded: in a two-party call, no Opus encode while only the
			// browser talks; in a conference, none for the one speaker.
			m.sendSilence()
			m.onShared, m.converge = false, 0
		case r.inputs[k] == nil && m.prompt == nil && m.converge > 0 && !(!r.noStateCopy && m.handBack(r.ticks)):
			// Quiet again, while others follow the shared encoder: the
			// leg's own encoder catches up with it on the same mix before
			// the leg moves over.
			m.payload = encodeTo(m.enc, m.conv, m.payload[:0], &m.pcm, shared)
			m.send(m.payload, m.group.samples)
			m.converge--
			m.quiet = 0
		case m.deaf: // hears its own prompt only (a waiting tone, a confirmation)
			clear(m.mix)
			if !m.prompt.mixInto(m.mix) {
				m.prompt = nil
			}
			m.payload = encodeTo(m.enc, m.conv, m.payload[:0], &m.pcm, m.mix)
			m.send(m.payload, m.group.samples)
		case r.inputs[k] == nil && m.prompt == nil:
			g := m.group
			if len(g.payload) == 0 {
				g.payload = encodeTo(g.enc, g.conv, g.payload, &g.pcm, shared)
				g.used = r.ticks
			}
			m.send(g.payload, g.samples)
			m.quiet = 0
			m.onShared = true
		default:
			// A talker hears its own mix-minus; a listener with a prompt of
			// its own hears the shared mix plus that prompt.
			if r.inputs[k] != nil {
				if hasPrompt {
					addInto(m.mix, r.promptBuf)
				}
			} else {
				copy(m.mix, shared)
			}
			if m.prompt != nil && !m.prompt.mixInto(m.mix) {
				m.prompt = nil
			}
			m.payload = encodeTo(m.enc, m.conv, m.payload[:0], &m.pcm, m.mix)
			m.send(m.payload, m.group.samples)
			m.quiet = 0
			if !r.noStateCopy {
				m.converge = convergeTicks
			}
		}
	}
	r.tapLocked() // tap.go
	r.ticks++
	if r.ticks%fecEvery == 0 {
		r.tuneFEC()
	}
	if r.cfg.Meter != nil && r.ticks%jitterEvery == 0 {
		for _, m := range r.members {
			r.cfg.Meter.observeJitter(m.in.depth())
		}
	}
	d := time.Since(t0)
	r.tickTime += d
	r.cfg.Meter.observeTick(d)
}

// send writes one frame to the leg, from the tick: legs promise that a
// write never blocks for long (a UDP send, an SRTP packet to pion).
// An empty payload (a DTX gap) is not written at once: the gap is added
// up and written just before the next packet, which advances the leg's
// RTP clock by all of it in one call.
func (m *member) send(payload []byte, samples uint32) {
	if len(payload) == 0 && (m.digits == nil || !m.digits.SendingDTMF()) {
		m.gap += samples
		return
	}
	if m.gap > 0 {
		m.write(nil, m.gap)
		m.gap = 0
	}
	m.write(payload, samples)
}

func (m *member) write(payload []byte, samples uint32) {
	if m.out != nil {
		m.out.push(payload, samples)
		return
	}
	if err := m.leg.WritePayload(payload, samples); err != nil {
		m.failed.Add(1)
		return
	}
	m.sent++
}

// dropped counts the frames the leg refused or its queue dropped.
func (m *member) dropped() uint64 {
	if m.out != nil {
		_, d := m.out.counts()
		return d
	}
	return m.failed.Load()
}

// handBack gives a leg's history to its group's shared encoder when no
// other leg follows that encoder (it was not used last tick, nor yet this
// one): the leg then moves over at once, with no seam.
func (m *member) handBack(tick uint64) bool {
	g := m.group
	if g.used+1 == tick || len(g.payload) > 0 || g.conv.in != m.conv.in {
		return false
	}
	if !g.enc.copyFrom(m.enc) {
		return false
	}
	g.conv.copyFrom(m.conv)
	m.converge = 0
	return true
}

// fecEvery is how often (in ticks) a room tunes its encoders' FEC to the
// loss its legs' far ends report: RTCP comes about once per 5 s.
const fecEvery = 100

// tuneFEC sets each leg's own encoder to the loss its far end reports, and
// each shared encoder to the worst of its listeners': Opus spends bits on
// in-band FEC in proportion, and none on a clean path.
func (r *Room) tuneFEC() {
	for _, g := range r.groupList {
		g.loss = -1 // no listener reports: leave the encoder as it is
	}
	for _, m := range r.members {
		lr, ok := m.leg.(RemoteLossReporter)
		if !ok {
			continue
		}
		p := min(int(math.Ceil(lr.RemoteLoss()*100)), 50)
		if p != m.loss {
			m.loss = p
			m.enc.setLoss(p)
		}
		m.group.loss = max(m.group.loss, p)
	}
	for _, g := range r.groupList {
		if g.loss >= 0 && g.loss != g.lastLoss {
			g.lastLoss = g.loss
			g.enc.setLoss(g.loss)
		}
	}
}

// convergeTicks is how long a leg that went quiet keeps its own encoder on
// the shared mix: both encoders then hold the same recent signal, and the
// switch to the shared one is not heard.
const convergeTicks = 10

// dtxEvery is how often a DTX codec's silent listener gets a packet:
// every 400 ms, as an Opus encoder in DTX mode sends (RFC 7587 3.1.3).
const dtxEvery = 20

// sendSilence sends a listener a frame of silence: the codec's encoded
// silence, or for a DTX codec a gap in the stream (the leg's RTP clock
// advances) with a silent frame every dtxEvery ticks.
func (m *member) sendSilence() {
	g := m.group
	if m.quiet%dtxEvery == 0 {
		m.stillCN()
	}
	if m.dtx && m.quiet%dtxEvery != 0 {
		m.send(nil, g.samples)
	} else {
		m.send(g.silent, g.samples)
	}
	m.quiet++
}

// stillCN looks again whether a leg that took comfort noise still does (a
// re-INVITE may have dropped it): if not, it gets a frame every tick
// again. It reports false when that changed.
func (m *member) stillCN() bool {
	if !m.cn || takesCN(m.leg) {
		return true
	}
	m.cn, m.dtx = false, false
	return false
}

func addInto(dst, src []int16) {
	for i, v := range src {
		dst[i] = audio.SoftLimit(int32(dst[i]) + int32(v))
	}
}

// encodeTo converts a room-rate frame to the encoder's rate and encodes it.
func encodeTo(enc encoder, conv *retimer, dst []byte, scratch *[]int16, frame []int16) []byte {
	pcm := frame
	if conv.rs != nil || conv.narrowable {
		*scratch = conv.process((*scratch)[:0], frame)
		pcm = *scratch
	}
	out, err := enc.encode(dst, pcm)
	if err != nil {
		return dst[:0]
	}
	return out
}

func (r *Room) talkLocked(m *member, talking bool) {
	if talking == m.talking {
		return
	}
	m.talking = talking
	if talking {
		r.emit(m.id, "talking")
	} else {
		r.emit(m.id, "stopped-talking")
	}
}

// LegStats are one leg's counters, readable while the room runs.
type LegStats struct {
	ID          string
	Codec       string
	Muted, Deaf bool
	Talking     bool
	GainDB      float64
	Joined      time.Time
	Level       float64 // dBFS of the last frame
	Received    uint64  // packets
	// Network is the leg's received stream as RFC 3550 counts it (from a
	// ReceiveReporter, else from the jitter buffer's counts).
	Network       audio.ReceiveReport
	Sent, Dropped uint64 // frames written to the leg; refused by it (ended, send error)
	Jitter        audio.JitterStats
}

// RoomStats are a room's counters.
type RoomStats struct {
	Name string
	Rate int // the configured mixing rate
	// MixRate is the rate it mixes at now: NarrowRate while only
	// narrowband legs are in, else Rate.
	MixRate   int
	Legs      []LegStats
	Ticks     uint64
	MeanTick  time.Duration
	Locked    bool
	Max       int    // legs admitted at most (0: no limit)
	Recording string // the mix's WAV file while recording
}

// Stats returns the room's and every leg's counters.
func (r *Room) Stats() RoomStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RoomStats{Name: r.cfg.Name, Rate: r.cfg.Rate, MixRate: r.rate, Ticks: r.ticks, Locked: r.locked, Max: r.cfg.Max}
	if r.rec != nil {
		st.Recording = r.rec.path
	}
	if r.ticks > 0 {
		st.MeanTick = r.tickTime / time.Duration(r.ticks)
	}
	for _, m := range r.members {
		sent, dropped := m.sent, m.failed.Load()
		if m.out != nil {
			sent, dropped = m.out.counts()
		}
		m.in.mu.Lock()
		rx := m.in.received
		m.in.mu.Unlock()
		jb := m.in.stats()
		network := audio.ReceiveReport{Received: jb.Received, Expected: jb.Played + jb.Lost, Lost: int64(jb.Lost), Jitter: jb.Jitter}
		if rr, ok := m.leg.(ReceiveReporter); ok {
			network = rr.ReceiveReport()
		}
		st.Legs = append(st.Legs, LegStats{Network: network, ID: m.id, Codec: m.in.codec.Name, Muted: m.muted, Deaf: m.deaf, Talking: m.talking,
			GainDB: 20 * math.Log10(float64(m.gain)), Joined: m.joined, Level: m.level, Received: rx, Sent: sent, Dropped: dropped, Jitter: jb})
	}
	return st
}
