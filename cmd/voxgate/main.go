// Command voxgate is the SIP/WebRTC gateway and audio bridge.
//
//	voxgate [-config FILE]
//
// Without -config it runs on the embedded default configuration
// (configs/default.yaml). SIGTERM lets calls finish (up to drain_timeout),
// SIGINT stops at once, SIGHUP reloads the users.
package main

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// Pin at compile time that SIP and browser calls are bridge legs.
var (
	_ bridge.Leg = (*sip.Call)(nil)
	_ bridge.Leg = (*webclient.Call)(nil)
)

func main() {
	configPath := flag.String("config", "", "configuration file (default: the embedded configs/default.yaml)")
	flag.Parse()
	if err := run(*configPath); err != nil {
		fmt.Fprintln(os.Stderr, "voxgate:", err)
		os.Exit(1)
	}
}

func loadConfig(path string) (*Config, error) {
	if path == "" {
		return parseConfig(configs.DefaultName, configs.Default)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(path, data)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(orDefault(cfg.Log.Level, "info"))))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Log.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func users(cfg *Config) []sip.User {
	out := make([]sip.User, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		out = append(out, sip.User{Name: u.Name, Password: u.Password, HA1: strings.ToLower(u.HA1)})
	}
	return out
}

// router sends calls to the echo extension and to conference rooms, and
// refuses everything else, until the dialplan exists.
type router struct {
	echo      string
	prefix    string
	recordDir string
	rooms     *bridge.Rooms
	log       *slog.Logger
	hub       *roomHub
	// sip and web place calls to users (set once both servers run).
	sip *sip.Server
	web *webclient.Server
	// onEnd, when set (tests), sees every call after it ended.
	onEnd func(*sip.Call)
}

// roomHub names room participants and forwards room events to the browser
// pages that are in the room.
type roomHub struct {
	log   *slog.Logger
	mu    sync.Mutex
	names map[string]string                       // leg id -> display name
	pages map[string]map[*webclient.Call]struct{} // room -> pages in it
}

func newRoomHub(log *slog.Logger) *roomHub {
	return &roomHub{log: log, names: map[string]string{}, pages: map[string]map[*webclient.Call]struct{}{}}
}

func (h *roomHub) enter(room string, c routable) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch c := c.(type) {
	case *sip.Call:
		h.names[c.ID()] = c.Caller()
	case *webclient.Call:
		h.names[c.ID()] = c.User()
		if h.pages[room] == nil {
			h.pages[room] = map[*webclient.Call]struct{}{}
		}
		h.pages[room][c] = struct{}{}
	}
}

func (h *roomHub) leave(room string, c routable) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w, ok := c.(*webclient.Call); ok {
		delete(h.pages[room], w)
	}
}

func (h *roomHub) name(id string) string {
	if n := h.names[id]; n != "" {
		return n
	}
	return id
}

// participants tells a page who is in the room.
func (h *roomHub) participants(room *bridge.Room, c routable) {
	w, ok := c.(*webclient.Call)
	if !ok {
		return
	}
	h.mu.Lock()
	var names, talking []string
	for _, l := range room.Stats().Legs {
		names = append(names, h.name(l.ID))
		if l.Talking {
			talking = append(talking, h.name(l.ID))
		}
	}
	h.mu.Unlock()
	w.Participants(room.Name(), names)
	for _, n := range talking { // who is talking already
		w.Notify("talking", room.Name(), n)
	}
}

// run logs every room event and forwards it to the room's pages.
func (h *roomHub) run(events <-chan bridge.Event) {
	for e := range events {
		h.mu.Lock()
		name := h.name(e.Leg)
		pages := make([]*webclient.Call, 0, len(h.pages[e.Room]))
		for p := range h.pages[e.Room] {
			pages = append(pages, p)
		}
		if e.Type == "left" || e.Type == "kicked" {
			delete(h.names, e.Leg)
		}
		h.mu.Unlock()
		h.log.Info("room event", "room", e.Room, "leg", e.Leg, "name", name, "event", e.Type)
		for _, p := range pages {
			p.Notify(e.Type, e.Room, name)
		}
	}
}

// routable is what the router needs of a call, from a phone or a browser.
type routable interface {
	bridge.Leg
	Dialed() string
	Answer(ctx context.Context) error
	Hangup(ctx context.Context)
}

// HandleCall routes a SIP call.
func (r *router) HandleCall(ctx context.Context, c *sip.Call) {
	if r.onEnd != nil {
		defer r.onEnd(c)
	}
	r.route(ctx, c, func(code int, reason string) { c.Reject(&sip.Rejection{Status: code, Reason: reason}) })
}

// browserRouter routes browser calls the same way.
type browserRouter struct{ r *router }

func (b browserRouter) HandleCall(ctx context.Context, c *webclient.Call) {
	b.r.route(ctx, c, c.Reject)
}

func (r *router) route(ctx context.Context, c routable, reject func(code int, reason string)) {
	dialed := c.Dialed()
	switch {
	case dialed == r.echo:
		if err := c.Answer(ctx); err != nil {
			return
		}
		if err := bridge.Echo(ctx, c); err != nil && ctx.Err() == nil {
			r.log.Warn("echo ended", "call_id", c.ID(), "error", err)
		}
	case r.rooms != nil && len(dialed) > len(r.prefix) && strings.HasPrefix(dialed, r.prefix):
		room, err := r.rooms.Get(strings.TrimPrefix(dialed, r.prefix))
		if err != nil {
			reject(503, "Service Unavailable")
			return
		}
		if err := c.Answer(ctx); err != nil {
			return
		}
		r.hub.enter(room.Name(), c)
		defer r.hub.leave(room.Name(), c)
		if err := room.Join(c, bridge.JoinOptions{}); err != nil {
			r.log.Info("room refused the call", "room", room.Name(), "error", err)
			c.Hangup(ctx)
			return
		}
		r.hub.participants(room, c)
		if r.recordDir != "" && !room.Recording() {
			name := fmt.Sprintf("room-%s-%s.wav", room.Name(), time.Now().UTC().Format("20060102T150405Z"))
			if err := room.Record(filepath.Join(r.recordDir, name), false); err != nil && !errors.Is(err, bridge.ErrRecording) {
				r.log.Error("recording failed to start", "room", room.Name(), "error", err)
			}
		}
		<-c.Done() // the leg leaves the room when the call ends
		if r.recordDir != "" {
			for i := 0; i < 50 && stillIn(room, c.ID()); i++ { // the leg leaves asynchronously
				time.Sleep(10 * time.Millisecond)
			}
			if room.Len() == 0 { // the last one out ends the recording
				_ = room.StopRecording()
			}
		}
	case r.isUser(dialed):
		r.callUser(ctx, c, dialed, reject)
	default:
		r.log.Info("no route", "dialed", dialed, "call_id", c.ID())
		reject(404, "Not Found")
	}
}

// isUser reports whether dialed names a user with an open page or a
// registered phone.
func (r *router) isUser(dialed string) bool {
	return (r.web != nil && r.web.Online(dialed)) || (r.sip != nil && len(r.sip.Bindings(dialed)) > 0)
}

// callerName is how a caller is shown to the callee.
func callerName(c routable) string {
	switch c := c.(type) {
	case *sip.Call:
		return c.Caller()
	case *webclient.Call:
		return c.User()
	}
	return c.ID()
}

// callUser rings a user (their open pages first, else their newest
// registered phone) for up to 30 s and bridges the caller to whoever answers,
// transcoding where the codecs differ. Until the dialplan exists this is the
// rule for dialling a user name.
func (r *router) callUser(ctx context.Context, c routable, user string, reject func(int, string)) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if sc, ok := c.(*sip.Call); ok {
		_ = sc.Ringing()
	}
	var callee routable
	var err error
	if r.web != nil && r.web.Online(user) {
		callee, err = r.web.Ring(rctx, user, callerName(c))
	} else {
		callee, err = r.sip.DialUser(rctx, user, callerName(c))
	}
	if err != nil {
		r.log.Info("user did not answer", "user", user, "error", err)
		switch {
		case errors.Is(err, webclient.ErrDeclined):
			reject(486, "Busy Here")
		default:
			var rej *sip.Rejection
			if errors.As(err, &rej) {
				reject(rej.Status, rej.Reason)
			} else {
				reject(480, "Temporarily Unavailable")
			}
		}
		return
	}
	if err := c.Answer(ctx); err != nil {
		callee.Hangup(ctx)
		return
	}
	_ = callee.Answer(ctx) // tells a page the call is up
	// Digits keyed on a page go to a phone as RFC 4733 events.
	if w, ok := c.(*webclient.Call); ok {
		if p, ok := callee.(*sip.Call); ok {
			w.OnDTMF(p.SendDTMF)
		}
	}
	if w, ok := callee.(*webclient.Call); ok {
		if p, ok := c.(*sip.Call); ok {
			w.OnDTMF(p.SendDTMF)
		}
	}
	room, err := bridge.Connect(c, callee, bridge.RoomConfig{Logger: r.log})
	if err != nil {
		r.log.Error("cannot bridge the call", "error", err)
		c.Hangup(ctx)
		callee.Hangup(ctx)
		return
	}
	r.log.Info("call bridged", "caller", callerName(c), "user", user, "rate", room.Rate())
	select {
	case <-c.Done():
	case <-callee.Done():
	case <-ctx.Done():
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer hcancel()
	c.Hangup(hctx)
	callee.Hangup(hctx)
	room.Close()
}

// stillIn reports whether leg id is in the room.
func stillIn(room *bridge.Room, id string) bool {
	for _, l := range room.Stats().Legs {
		if l.ID == id {
			return true
		}
	}
	return false
}

func newRouter(cfg *Config, log *slog.Logger) *router {
	events := make(chan bridge.Event, 256)
	hub := newRoomHub(log)
	go hub.run(events)
	tmpl := bridge.RoomConfig{Rate: cfg.Rooms.Rate, Max: cfg.Rooms.Max, Logger: log, Events: events}
	if cfg.Rooms.Tones != nil && !*cfg.Rooms.Tones {
		tmpl.JoinTone, tmpl.LeaveTone = bridge.NoTone, bridge.NoTone
	}
	return &router{echo: cfg.EchoExtension, prefix: cfg.Rooms.Prefix, recordDir: cfg.Rooms.RecordDir, rooms: bridge.NewRooms(tmpl), hub: hub, log: log}
}

func run(configPath string) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	// Take the signals before anything starts: a SIGHUP that arrived
	// before Notify would kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log := newLogger(cfg, os.Stderr)
	slog.SetDefault(log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	userSet := sip.NewUsers(users(cfg)...)
	rt := newRouter(cfg, log)
	defer rt.rooms.Close()
	srv, web, err := start(ctx, cfg, userSet, log, rt)
	if err != nil {
		return configErr(configPath, cfg, err)
	}
	defer web.Close()
	log.Info("voxgate started", "echo_extension", cfg.EchoExtension, "users", len(cfg.Users))

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			next, err := loadConfig(configPath)
			if err != nil {
				log.Error("reload failed, keeping the old users", "error", err)
				continue
			}
			userSet.Set(users(next))
			log.Info("users reloaded", "users", len(next.Users))
		case syscall.SIGTERM:
			log.Info("SIGTERM: letting calls finish", "calls", srv.Calls(), "timeout", cfg.DrainTimeout)
			dctx, dcancel := context.WithTimeout(ctx, cfg.DrainTimeout)
			srv.Drain(dctx)
			dcancel()
			srv.Close()
			log.Info("stopped")
			return nil
		case syscall.SIGINT:
			log.Info("SIGINT: stopping now", "calls", srv.Calls())
			srv.Close()
			return nil
		}
	}
	return nil
}

// start wires the packages together and opens the listeners.
func start(ctx context.Context, cfg *Config, userSet *sip.Users, log *slog.Logger, r *router) (*sip.Server, *webclient.Server, error) {
	srv, err := sip.NewServer(cfg.SIP, sip.WithLogger(log), sip.WithUsers(userSet), sip.WithHandler(r))
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, nil, err
	}
	web, err := webclient.NewServer(cfg.Web, webclient.WithLogger(log), webclient.WithHandler(browserRouter{r}),
		webclient.WithAuthenticator(passwordChecker{users: userSet, realm: cfg.SIP.Domain}))
	if err == nil {
		err = web.Start(ctx)
	}
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	r.sip, r.web = srv, web
	return srv, web, nil
}

// passwordChecker signs browsers in with the SIP users' passwords (or their
// MD5 HA1, for users configured that way).
type passwordChecker struct {
	users *sip.Users
	realm string
}

func (p passwordChecker) CheckPassword(user, password string) bool {
	u, ok := p.users.Lookup(user)
	switch {
	case !ok:
		return false
	case u.Password != "":
		return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	case len(u.HA1) == 32:
		h := md5.Sum([]byte(user + ":" + p.realm + ":" + password))
		return subtle.ConstantTimeCompare([]byte(u.HA1), []byte(hex.EncodeToString(h[:]))) == 1
	}
	return false
}

// configErr names the config file for errors found when the server starts.
func configErr(path string, cfg *Config, err error) error {
	var fe *sip.FieldError
	if errors.As(err, &fe) {
		name := path
		if name == "" {
			name = configs.DefaultName
		}
		return &ConfigError{File: name, Field: "sip." + fe.Field, Err: fe.Err}
	}
	return err
}
