// Package webclient is voxgate's web side: one HTTP server for the embedded
// page, sign-in, the WebSocket signalling and a pion PeerConnection per
// browser call, which becomes a media leg.
package webclient

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/internal/guard"
	"github.com/voxgate/voxgate/internal/logging"
)

//go:embed page
var pageFS embed.FS

// Handler decides what happens to a browser call. HandleCall runs in its own
// goroutine and may block for the call's life; the call is ended when it
// returns.
type Handler interface {
	HandleCall(ctx context.Context, c *Call)
}

// Authenticator checks a user's password (the same users as the SIP side).
type Authenticator interface {
	CheckPassword(user, password string) bool
}

// ICEServer is a STUN or TURN server handed to browsers and used by voxgate.
type ICEServer struct {
	URLs       []string `yaml:"urls" json:"urls"`
	Username   string   `yaml:"username" json:"username,omitempty"`
	Credential string   `yaml:"credential" json:"credential,omitempty"`
}

// Config configures the web side.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey serve HTTPS (browsers need it off localhost).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ICEIPs limits the addresses voxgate gathers ICE candidates on (empty: all).
	ICEIPs []string `yaml:"ice_ips"`
	// PublicIP is announced instead of the local address (1:1 NAT).
	PublicIP string `yaml:"public_ip"`
	// UDPPorts is the range for ICE, "min-max" (default 40000-40999).
	UDPPorts string `yaml:"udp_ports"`
	// ICEServers go to the browsers and to voxgate's own ICE agent.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// AllowedOrigins may open the WebSocket besides the page's own origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// APIToken is the legacy plaintext token of scope admin: requests
	// carrying "Authorization: Bearer <token>" may do everything. Prefer
	// Tokens.
	APIToken string `yaml:"api_token"`
	// Tokens are API tokens with scopes, stored hashed (`voxgate token`).
	// The REST API and /metrics are off while neither Tokens nor APIToken
	// is set.
	Tokens []Token `yaml:"tokens"`
	// GuestKey signs guest links (base64 of at least 32 bytes). Unset, the
	// key WithGuestKey gives (cmd/voxgate keeps one in data_dir), else a
	// random key made at start: links then end when voxgate restarts.
	GuestKey string `yaml:"guest_key"`
	// SIPWebSocket serves SIP over WebSocket (RFC 7118) on /sip for browser
	// softphones (JsSIP, SIP.js); see sipws.go.
	SIPWebSocket bool `yaml:"sip_websocket"`
	// LoopbackICE also gathers loopback candidates (tests between two pion peers).
	LoopbackICE bool `yaml:"-"`

	portMin, portMax uint16
	guestKey         []byte
}

// Validate fills defaults. Its errors are *config.Error naming the field
// below the web section ("udp_ports").
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return config.Fieldf("listen", "%q is not host:port", c.Listen)
	}
	if c.UDPPorts == "" {
		c.UDPPorts = "40000-40999"
	}
	lo, hi, ok := strings.Cut(c.UDPPorts, "-")
	a, e1 := strconv.Atoi(lo)
	b, e2 := strconv.Atoi(hi)
	if !ok || e1 != nil || e2 != nil || a < 1024 || b > 65535 || b < a {
		return config.Fieldf("udp_ports", "%q is not a range like 40000-40999", c.UDPPorts)
	}
	c.portMin, c.portMax = uint16(a), uint16(b)
	for i, ip := range c.ICEIPs {
		if ip != "" && net.ParseIP(ip) == nil {
			return config.Fieldf(fmt.Sprintf("ice_ips[%d]", i), "%q is not an IP address", ip)
		}
	}
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		return config.Fieldf("public_ip", "%q is not an IP address", c.PublicIP)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if err := c.validateGuestKey(); err != nil {
		return err
	}
	if err := c.validateSIPWebSocket(); err != nil { // sipws.go
		return err
	}
	return c.validateTokens()
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithHandler sets who routes browser calls.
func WithHandler(h Handler) Option { return func(s *Server) { s.handler = h } }

// WithAuthenticator sets who checks passwords.
func WithAuthenticator(a Authenticator) Option { return func(s *Server) { s.auth = a } }

// WithMux lets tests mount extra routes next to voxgate's.
func WithMux(f func(*http.ServeMux)) Option { return func(s *Server) { s.extra = f } }

// WithICEConn carries every call's ICE and media over one UDP socket (a
// single port to open in a firewall; tests pass a socket made inside a
// network namespace).
func WithICEConn(c net.PacketConn) Option { return func(s *Server) { s.iceConn = c } }

// Server is the HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	handler  Handler
	auth     Authenticator
	guard    Guard
	control  Control
	history  History // call history (history.go); nil: none kept
	extra    func(*http.ServeMux)
	iceConn  net.PacketConn
	sipWS    http.Handler     // SIP over WebSocket on /sip (sipws.go); nil: off
	ready    []readinessCheck // /readyz asks each (health.go)
	sessions *sessions
	// earlyWait is how long candidates sent ahead of their call wait for
	// it (trickle.go); tests shorten it.
	earlyWait time.Duration
	guests    *guestSigner
	guestKey  []byte      // WithGuestKey's
	api       *webrtc.API // the page's calls: Opus
	sipAPI    *webrtc.API // browsers' SIP calls (sipmedia.go): Opus and RFC 4733 telephone-event
	http      *http.Server
	ln        net.Listener
	upgrader  websocket.Upgrader

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	loginsOK, loginsRefused atomic.Uint64

	mu     sync.Mutex
	online map[string]map[*signal]struct{} // open pages per user
	rings  map[string]*ringing
	// presence is told when a user's first page opens and last closes
	// (WithPresence).
	presence func(user string, online bool)

	metricsState // /metrics (metrics.go)
}

// NewServer builds the server; Serve or Start runs it.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: slog.Default(), sessions: newSessions(cfg.SessionTTL), earlyWait: earlyWait,
		online: map[string]map[*signal]struct{}{}, rings: map[string]*ringing{}}
	for _, o := range opts {
		o(s)
	}
	if s.guard == nil {
		s.guard = guard.New(guard.Config{}, s.log)
	}
	if s.auth == nil {
		return nil, errors.New("webclient: an Authenticator is required")
	}
	s.guests = &guestSigner{key: s.cfg.guestKey, now: time.Now}
	if s.guests.key == nil && s.guestKey != nil {
		if len(s.guestKey) < minGuestKey {
			return nil, fmt.Errorf("webclient: a guest key of %d bytes: want at least %d", len(s.guestKey), minGuestKey)
		}
		s.guests.key = s.guestKey
	}
	if s.guests.key == nil {
		s.guests.key = make([]byte, minGuestKey)
		_, _ = rand.Read(s.guests.key)
		if s.control != nil && s.cfg.apiOn() {
			s.log.Info("web.guest_key is not set: guest links are signed with a key made at start and stop working when voxgate restarts")
		}
	}
	var iceMux ice.UDPMux
	if s.iceConn != nil {
		iceMux = webrtc.NewICEUDPMux(nil, s.iceConn) // one for both APIs
	}
	var err error
	if s.api, err = newAPI(&s.cfg, iceMux, s.log, false); err != nil {
		return nil, err
	}
	if s.sipAPI, err = newAPI(&s.cfg, iceMux, s.log, true); err != nil {
		return nil, err
	}
	if err := s.newMetrics(); err != nil {
		return nil, err
	}
	s.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: s.checkOrigin}
	mux := http.NewServeMux()
	sub, _ := fs.Sub(pageFS, "page")
	mux.Handle("GET /", http.FileServerFS(sub))
	s.mountHealth(mux)
	mux.HandleFunc("GET /ws", s.handleWS)
	s.mountAPI(mux)
	s.mountSIPWebSocket(mux) // sipws.go
	if s.extra != nil {
		s.extra(mux)
	}
	s.http = &http.Server{Handler: s.jsonErrors(mux), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// newAPI builds pion's API: Opus (and with events RFC 4733
// telephone-event at Opus's clock), the interceptors audio needs (RTCP
// reports, TWCC), ICE limited to UDP4 on the configured addresses and ports,
// no mDNS, over mux when it is set.
func newAPI(cfg *Config, mux ice.UDPMux, log *slog.Logger, events bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(opusParameters(), webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if events {
		if err := m.RegisterCodec(telephoneEventParameters(), webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	se := webrtc.SettingEngine{LoggerFactory: logging.Pion(log)} // pion's logs through slog
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if err := se.SetEphemeralUDPPortRange(cfg.portMin, cfg.portMax); err != nil {
		return nil, err
	}
	if len(cfg.ICEIPs) > 0 {
		allowed := map[string]bool{}
		for _, ip := range cfg.ICEIPs {
			allowed[net.ParseIP(ip).String()] = true
		}
		se.SetIPFilter(func(ip net.IP) bool { return allowed[ip.String()] })
	}
	if cfg.PublicIP != "" {
		se.SetNAT1To1IPs([]string{cfg.PublicIP}, webrtc.ICECandidateTypeHost)
	}
	if cfg.LoopbackICE {
		se.SetIncludeLoopbackCandidate(true)
	}
	if mux != nil {
		se.SetICEUDPMux(mux)
	}
	// RTCP: sender/receiver reports, TWCC feedback (registerInterceptors).
	reg := &interceptor.Registry{}
	if err := registerInterceptors(m, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)), nil
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(ctx)
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ln)
}

// Serve serves on ln in the background (tests pass a listener made inside a
// network namespace).
func (s *Server) Serve(ln net.Listener) error {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web server stopped", "error", err)
		}
	}()
	s.log.Info("web listening", "addr", ln.Addr())
	return nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server and ends every browser call. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.http.Shutdown(ctx)
		s.wg.Wait()
	})
	return nil
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if u.Host == r.Host {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == origin {
			return true
		}
	}
	return false
}

const cookieName = "voxgate_session"

func (s *Server) identity(r *http.Request) (identity, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return identity{}, ErrSession
	}
	return s.sessions.check(c.Value)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<token>" reads better than "\u003ctoken\u003e"
	_ = enc.Encode(v)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var in struct{ User, Password, Guest, Name string }
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in)
	if err == nil && in.Guest != "" {
		s.guestLogin(w, r, in.Guest, in.Name)
		return
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", tooBig.Limit))
		return
	}
	if err != nil || in.User == "" {
		writeError(w, http.StatusBadRequest, "send {\"user\":..., \"password\":...} (or {\"guest\":..., \"name\":...})")
		return
	}
	if s.refuseBanned(w, r) {
		s.loginsRefused.Add(1)
		return
	}
	if !s.auth.CheckPassword(in.User, in.Password) {
		s.loginsRefused.Add(1)
		s.log.Info("web sign-in refused", "user", in.User, "remote", "tcp:"+r.RemoteAddr)
		s.failed(r, in.User, "web")
		if s.refuseBanned(w, r) {
			return
		}
		writeError(w, http.StatusUnauthorized, "wrong user or password")
		return
	}
	s.guard.Succeeded(remoteIP(r), in.User)
	s.loginsOK.Add(1)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.sessions.issue(in.User), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLSCert != "", MaxAge: int(s.cfg.SessionTTL.Seconds())})
	writeJSON(w, http.StatusOK, sessionInfo{User: in.User, ICEServers: nonNil(s.cfg.ICEServers)})
}

func (s *Server) handleLogout(w http.ResponseWriter, _ *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{})
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	id, err := s.identity(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	writeJSON(w, http.StatusOK, sessionInfo{User: id.user, Guest: id.guest(), Room: id.room, ICEServers: nonNil(s.cfg.ICEServers)})
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.refuseBanned(w, r) {
		return
	}
	id, err := s.identity(r)
	if err != nil {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if !s.checkOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		newSignal(s, conn, id).run(s.ctx)
	}()
}
