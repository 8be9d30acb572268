package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/internal/guard"
)

// Handler decides what happens to a call. HandleCall runs in the INVITE's
// goroutine: it must Answer or Reject the call, and may block for the call's
// whole life (the server hangs up a call still up when it returns).
type Handler interface {
	HandleCall(ctx context.Context, c *Call)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Call)

// HandleCall implements Handler.
func (f HandlerFunc) HandleCall(ctx context.Context, c *Call) { f(ctx, c) }

// Option configures a Server.
type Option func(*Server) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error { s.log = l; return nil }
}

// WithHandler sets who routes incoming calls (default: everything gets 404).
func WithHandler(h Handler) Option {
	return func(s *Server) error { s.handler = h; return nil }
}

// WithUsers sets the local accounts (default: none).
func WithUsers(u *Users) Option {
	return func(s *Server) error { s.users = u; return nil }
}

// WithGuard shares a brute-force guard with other ways in (the web side);
// without it the server makes its own from Config.Guard.
func WithGuard(g *guard.Guard) Option {
	return func(s *Server) error { s.guard = g; return nil }
}

// WithTrunkObserver sets a function told of each change of a trunk's
// registration (registered, failed, unregistered at stop). It runs on the
// trunk's goroutine: it must not block.
func WithTrunkObserver(f func(TrunkState)) Option {
	return func(s *Server) error { s.trunkObserver = f; return nil }
}

// trunkChanged tells the observer of a trunk's new state.
func (s *Server) trunkChanged(st TrunkState) {
	if s.trunkObserver != nil {
		s.trunkObserver(st)
	}
}

// supportedExtensions are the option tags voxgate understands in Require.
var supportedExtensions = map[string]bool{}

// servedMethods are the methods voxgate serves, in the order its Allow
// header lists them: each has a handler in NewServer (a test holds the two
// together). A new method is one line here and one handler.
var servedMethods = []sip.RequestMethod{
	sip.INVITE,
	sip.ACK,
	sip.CANCEL,
	sip.BYE,
	sip.OPTIONS,
	sip.REGISTER,
	sip.INFO,
	sip.UPDATE,
	sip.REFER,
}

// allowedMethods is the value of every Allow header voxgate sends.
var allowedMethods = joinMethods(servedMethods)

func joinMethods(ms []sip.RequestMethod) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// Server is voxgate's SIP user agent: registrar, call server and client.
type Server struct {
	cfg      Config
	log      *slog.Logger
	handler  Handler
	users    *Users
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	client   *sipgo.Client
	dialogs  *sipgo.DialogServerCache
	location *location
	auth     *digestAuth
	guard    *guard.Guard
	retries  *retries
	ports    *portPool
	filter   *badRequestFilter
	counters *counters
	mediaIP  netip.Addr // where our RTP sockets listen
	sdpIP    netip.Addr // what we advertise in SDP
	contact  sip.ContactHeader
	trunks   []*trunk
	qual     qualifier // OPTIONS keepalive state (qualify.go)
	handlers map[sip.RequestMethod]sipgo.RequestHandler
	// routes are the handlers counted, as sipgo's server calls them;
	// noRoute is for the other methods.
	routes  map[sip.RequestMethod]sipgo.RequestHandler
	noRoute sipgo.RequestHandler

	// cascadeFrom trusts CascadeHeader from a source address (cascade.go).
	cascadeFrom func(ip string) bool

	// Registrations kept across restarts (locstore.go); nil without a store.
	locStore  LocationStore
	locWriter *locWriter

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	draining  bool

	mu      sync.Mutex
	calls   map[string]*Call // by dialog ID
	addrs   []net.Addr
	streams []*streamListener // TCP and TLS listeners, for their connection counts
	// inflight counts server transactions alive (see admit); txEnded
	// counts one out.
	inflight atomic.Int64
	txEnded  func(string, error)
	// dates is the Date header of the registrar's 200s.
	dates dateHeaders

	// referrer carries out transfers (refer.go; nil: REFER gets 403).
	referrer Referrer
	// trunkObserver is told of trunk registration changes (may be nil).
	trunkObserver func(TrunkState)
	// timerSet overrides session timer intervals (tests; timers.go).
	timerSet TimerSettings

	// TLS (tls.go): the listeners' certificate (nil without tls_cert), the
	// client for requests over TLS, the TLS listener's port, failed handshakes.
	certs     *certStore
	tlsClient *sipgo.Client
	tlsPort   int
	tlsFails  atomic.Int64

	// wsln takes the WebSocket connections of the web server's /sip
	// (ws.go), from Start on (wsServing).
	wsln      *wsListener
	wsServing atomic.Bool
	// webrtc makes the media of calls over WebSocket (webrtc.go); nil: none.
	webrtc WebRTC
}

// NewServer builds a server; Start opens its listeners.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: slog.Default(), location: newLocation(), counters: newCounters(), calls: map[string]*Call{}}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.handler == nil {
		s.handler = HandlerFunc(func(_ context.Context, c *Call) { c.Reject(RejectNotFound.Status, RejectNotFound.Reason) })
	}
	if s.users == nil {
		s.users = NewUsers()
	}
	s.auth = &digestAuth{realm: cfg.Domain, nonces: newNonces(cfg.NonceTTL), algos: cfg.DigestAlgorithms}
	if s.guard == nil {
		s.guard = guard.New(cfg.Guard, s.log)
	}
	s.retries = newRetries(cfg.Guard.Window)
	s.txEnded = func(string, error) { s.inflight.Add(-1) }
	s.ports = newPortPool(cfg.rtpMin, cfg.rtpMax)
	host, _, _ := net.SplitHostPort(cfg.Listen[0].Addr)
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, config.Fieldf("listen[0].addr", "the first listener needs an IP address, not %q", host)
	}
	s.mediaIP, s.sdpIP = ip, ip
	if cfg.Advertise != "" {
		s.sdpIP = netip.MustParseAddr(cfg.Advertise)
	}
	if ip.IsUnspecified() && cfg.Advertise == "" {
		return nil, config.FieldErr("advertise", errors.New("is required when listening on a wildcard address"))
	}
	s.wsln = newWSListener()
	s.filter = &badRequestFilter{log: s.log, parser: sip.NewParser(), conns: map[string]net.PacketConn{}, counters: s.counters, wsReply: s.wsReply}
	uaOpts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent("voxgate"),
		sipgo.WithUserAgentHostname(s.sdpIP.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(s.filter.filter)),
	}
	if cfg.TLSCert != "" {
		if s.certs, err = newCertStore(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, config.FieldErr("tls_cert", err)
		}
	}
	clientTLS, err := s.clientTLSConfig()
	if err != nil {
		return nil, err
	}
	uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(clientTLS))
	s.ua, err = sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, err
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		return nil, err
	}
	for i := range cfg.Trunks {
		s.trunks = append(s.trunks, newTrunk(s, &s.cfg.Trunks[i]))
	}
	s.handlers = map[sip.RequestMethod]sipgo.RequestHandler{
		sip.REGISTER: s.guarded(s.handleRegister),
		sip.INVITE:   s.guarded(s.handleInvite),
		sip.ACK:      s.handleAck,
		sip.BYE:      s.handleBye,
		sip.CANCEL: func(req *sip.Request, tx sip.ServerTransaction) {
			// sipgo answers a CANCEL that matches an INVITE transaction itself.
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		},
		sip.OPTIONS: s.handleOptions,
		sip.INFO:    s.handleInfo,
		sip.UPDATE:  s.guarded(s.handleUpdate),
		sip.REFER:   s.guarded(s.handleRefer), // refer.go
	}
	s.routes = make(map[sip.RequestMethod]sipgo.RequestHandler, len(s.handlers))
	for m, h := range s.handlers {
		s.routes[m] = s.counted(h)
		s.srv.OnRequest(m, s.routes[m])
	}
	s.noRoute = s.counted(s.handleUnknown)
	s.srv.OnNoRoute(s.noRoute)
	return s, nil
}

// counted counts the requests h handles.
func (s *Server) counted(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		markReceived(req)
		m := string(req.Method) // any token a client sends: counted by name only when known
		if _, served := s.handlers[req.Method]; !served && !knownMethods[m] {
			m = "other"
		}
		s.counters.request(m)
		if tx != nil && req.Method != sip.ACK && !s.admit(tx) {
			s.respond(tx, req, 503, "Service Unavailable (overloaded)", sip.NewHeader("Retry-After", "5"))
			tx.Terminate()
			return
		}
		h(req, tx)
	}
}

// admit counts a server transaction in until it terminates; it refuses one
// over sip.max_transactions, which bounds the memory a flood can hold.
func (s *Server) admit(tx sip.ServerTransaction) bool {
	if s.inflight.Add(1) > int64(s.cfg.MaxTransactions) {
		s.inflight.Add(-1)
		if s.counters.overloaded.Add(1)%1000 == 1 {
			s.log.Warn("sip: overloaded: requests refused with 503", "transactions", s.cfg.MaxTransactions, "refused", s.counters.overloaded.Load())
		}
		return false
	}
	if !tx.OnTerminate(s.txEnded) {
		s.inflight.Add(-1) // over already
	}
	return true
}

// dispatch hands a request to its handler as sipgo's server would.
func (s *Server) dispatch(req *sip.Request, tx sip.ServerTransaction) {
	if h := s.routes[req.Method]; h != nil {
		h(req, tx)
		return
	}
	s.noRoute(req, tx)
}

// Start opens the listeners and starts trunk registrations. It returns once
// every socket is bound.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.startLocationStore(ctx) // before any REGISTER can arrive
	var port int
	for i, l := range s.cfg.Listen {
		switch l.Transport {
		case "udp":
			c, err := net.ListenPacket("udp", l.Addr)
			if err != nil {
				s.Close()
				return config.FieldErr(fmt.Sprintf("listen[%d].addr", i), err)
			}
			raw := rawPacketConn(c)
			s.filter.addConn(raw) // its replies go to the sources raw reads
			s.addAddr(c.LocalAddr())
			rc := &readyConn{PacketConn: raw, ready: make(chan struct{})}
			s.serve(func() error { return s.srv.ServeUDP(rc) }, c.Close)
			// sipgo registers the socket for sending from it just before its
			// first read; wait for that, so a request sent right after Start
			// leaves from this socket instead of failing to bind its address.
			select {
			case <-rc.ready:
			case <-time.After(2 * time.Second):
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
		case "tcp", "tls":
			ln, err := net.Listen("tcp", l.Addr)
			if err != nil {
				s.Close()
				return config.FieldErr(fmt.Sprintf("listen[%d].addr", i), err)
			}
			s.addAddr(ln.Addr())
			if port == 0 {
				port = ln.Addr().(*net.TCPAddr).Port
			}
			capped := newStreamListener(ln, s.cfg.Stream, s.log, s.counters)
			s.mu.Lock()
			s.streams = append(s.streams, capped)
			s.mu.Unlock()
			checked := func(ln net.Listener) net.Listener {
				return &messageListener{Listener: ln, cfg: s.cfg.Stream, log: s.log, counters: s.counters}
			}
			if l.Transport == "tcp" {
				s.serve(func() error { return s.srv.ServeTCP(checked(capped)) }, capped.Close)
			} else {
				s.tlsPort = ln.Addr().(*net.TCPAddr).Port
				tln := checked(s.tlsListener(capped))
				s.serve(func() error { return s.srv.ServeTLS(tln) }, capped.Close)
			}
		}
	}
	// SIP over WebSocket: fed by WebSocketHandler (ws.go), under the
	// connection caps of TCP and TLS.
	wsCapped := newStreamListener(s.wsln, s.cfg.Stream, s.log, s.counters)
	s.mu.Lock()
	s.streams = append(s.streams, wsCapped)
	s.mu.Unlock()
	s.serve(func() error { return s.srv.ServeWS(wsCapped) }, wsCapped.Close)
	s.wsServing.Store(true)
	// Requests we send leave from our listening socket, so that a carrier
	// behind or in front of NAT sees the address our Contact names.
	copts := []sipgo.ClientOption{sipgo.WithClientLogger(s.log), sipgo.WithClientHostname(s.sdpIP.String()), sipgo.WithClientNAT()}
	if p := s.localPort("udp"); p != 0 {
		copts = append(copts, sipgo.WithClientConnectionAddr(net.JoinHostPort(s.mediaIP.String(), itoa(p))), sipgo.WithClientPort(p))
	}
	client, err := sipgo.NewClient(s.ua, copts...)
	if err != nil {
		s.Close()
		return err
	}
	s.client = client
	// Requests over TLS leave from a connection of their own or one the
	// peer opened (a phone's), never bound to the UDP port (see tls.go).
	if s.tlsClient, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(s.log), sipgo.WithClientHostname(s.sdpIP.String()), sipgo.WithClientNAT()); err != nil {
		s.Close()
		return err
	}
	s.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "voxgate", Host: s.sdpIP.String(), Port: port}}
	s.dialogs = sipgo.NewDialogServerCache(s.client, s.contact)
	for _, t := range s.trunks {
		t.start(s.ctx)
	}
	s.startQualify()
	s.log.Info("sip listening", "addrs", s.Addrs())
	return nil
}

func (s *Server) serve(run func() error, stop func() error) {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := run(); err != nil && s.ctx.Err() == nil {
			s.log.Error("sip: a listener stopped", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		<-s.ctx.Done()
		_ = stop()
	}()
}

func (s *Server) addAddr(a net.Addr) {
	s.mu.Lock()
	s.addrs = append(s.addrs, a)
	s.mu.Unlock()
}

// Addrs returns the bound listener addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Bindings returns the live registrations of user.
func (s *Server) Bindings(user string) []Binding { return s.location.lookup(user) }

// Calls returns the number of calls in progress.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Drain refuses new calls (503) and waits until every call has ended or ctx
// is done; then the remaining calls are hung up.
func (s *Server) Drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for s.Calls() > 0 {
		select {
		case <-ctx.Done():
			s.hangupAll()
			return
		case <-t.C:
		}
	}
}

func (s *Server) hangupAll() {
	s.mu.Lock()
	calls := make([]*Call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c.Hangup(ctx)
		}()
	}
	wg.Wait()
}

// Close hangs up every call, unregisters from trunks and stops listening.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.hangupAll()
		for _, t := range s.trunks {
			t.stop()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		s.locWriter.close()
		if s.client != nil {
			_ = s.client.Close()
		}
		if s.tlsClient != nil {
			_ = s.tlsClient.Close()
		}
		_ = s.ua.Close()
	})
	return nil
}

// logSource is where a request came from, as logs write addresses:
// "transport:ip:port" (udp:192.0.2.1:5060).
func logSource(req *sip.Request) string {
	return transportName(req.Transport()) + ":" + req.Source()
}

// respond answers req with a status and reason phrase.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := newResponse(req, code, reason)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	s.send(tx, res)
}

func (s *Server) send(tx sip.ServerTransaction, res *sip.Response) {
	if headerNamed(res, "Server") == nil {
		res.AppendHeader(serverHeader)
	}
	s.counters.response(res.StatusCode)
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "status", res.StatusCode, "error", err)
	}
}

// guarded refuses requests from banned sources and checks Require headers
// before handing a request to h.
func (s *Server) guarded(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if unsup := unsupportedRequire(req); unsup != "" {
			s.respond(tx, req, 420, "Bad Extension", sip.NewHeader("Unsupported", unsup))
			return
		}
		if s.guard.Banned(sourceIP(req)) {
			s.respond(tx, req, 403, "Forbidden (too many failed authentications)")
			return
		}
		h(req, tx)
	}
}

// unsupportedRequire returns the option tags of Require / Proxy-Require we do
// not support (RFC 3261 section 8.2.2.3), comma-separated.
func unsupportedRequire(req *sip.Request) string {
	var out []string
	for _, name := range [...]string{"Require", "Proxy-Require"} {
		for _, h := range req.Headers() {
			if !asciiEqualFold(h.Name(), name) {
				continue
			}
			for _, tag := range strings.Split(h.Value(), ",") {
				tag = strings.TrimSpace(tag)
				if tag != "" && !supportedExtensions[strings.ToLower(tag)] {
					out = append(out, tag)
				}
			}
		}
	}
	return strings.Join(out, ", ")
}

// markReceived adds received=<source address> to the top Via of a request
// whose sent-by host is not the address it came from (RFC 3261 18.2.1: a
// phone behind NAT writes its private address), so every response says
// where it went. sipgo sends the response to the source address itself, and
// with rport (RFC 3581) to the source port and fills rport and received.
func markReceived(req *sip.Request) {
	via := req.Via()
	if via == nil || via.Params.Has("received") || via.Params.Has("rport") {
		return
	}
	ip := sourceIP(req)
	if ip != "" && ip != via.Host {
		via.Params.Add("received", ip)
	}
}

func sourceIP(req *sip.Request) string {
	host, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return req.Source()
	}
	return host
}

// authenticate checks the credentials in header hdr (Authorization or
// Proxy-Authorization) and on failure challenges with status (401 or 407).
// It returns the authenticated user name.
func (s *Server) authenticate(req *sip.Request, tx sip.ServerTransaction, hdr string, status int) (string, bool) {
	return s.authenticateWith(req, tx, hdr, status, s.users.Lookup)
}

// authenticateWith is authenticate against the accounts lookup knows.
func (s *Server) authenticateWith(req *sip.Request, tx sip.ServerTransaction, hdr string, status int, lookup func(string) (User, bool)) (string, bool) {
	challenge := func(stale bool, reuse string) {
		name, reason := "WWW-Authenticate", "Unauthorized"
		if status == 407 {
			name, reason = "Proxy-Authenticate", "Proxy Authentication Required"
		}
		res := sip.NewResponseFromRequest(req, status, reason, nil)
		for _, v := range s.auth.challenges(stale, reuse) {
			res.AppendHeader(sip.NewHeader(name, v))
		}
		s.send(tx, res)
		if req.Method != sip.INVITE {
			// A challenge is cheap to make again: the transaction need not
			// stay for Timer J (32 s over UDP) to absorb retransmissions,
			// which halves what a REGISTER flood holds.
			tx.Terminate()
		}
	}
	ip := sourceIP(req)
	h := headerNamed(req, hdr)
	if h == nil {
		challenge(false, "")
		return "", false
	}
	var creds Credentials // its values are parts of the header's
	if err := parseCredentials(h.Value(), &creds); err != nil {
		s.respond(tx, req, 400, "Bad Request (malformed "+hdr+" header)")
		return "", false
	}
	u, ok := lookup(creds.Username)
	var err error
	if ok {
		err = s.auth.verify(creds, string(req.Method), u)
	} else {
		err = ErrUnknownUser
	}
	switch {
	case err == nil:
		s.guard.Succeeded(ip, creds.Username)
		return creds.Username, true
	case errors.Is(err, ErrStaleNonce):
		challenge(true, "")
		return "", false
	}
	s.counters.authFailures.Add(1)
	// The guard keeps the name for its window: not the whole header with it.
	if wait := s.guard.Failed(ip, strings.Clone(creds.Username), "sip"); wait > 0 {
		select { // tarpit: a guesser gets one try per delay
		case <-time.After(wait):
		case <-s.ctx.Done():
		}
	}
	if s.guard.Banned(ip) {
		s.respond(tx, req, 403, "Forbidden (too many failed authentications)")
		return "", false
	}
	// The first wrong answer gets a new challenge (RFC 3261 22.4); a client
	// that retries the same dialog with wrong credentials again is told 403,
	// which ends the retry loops of phones that resend a stored password on
	// every 401 (baresip 1.0 does).
	if s.retries.repeated(req.CallID().Value()) {
		s.respond(tx, req, 403, "Forbidden (wrong password)")
		return "", false
	}
	challenge(false, creds.Nonce)
	return "", false
}

func (s *Server) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.Draining() { // a dispatcher's probe takes this node out
		s.respond(tx, req, 503, "Service Unavailable (draining)", sip.NewHeader("Retry-After", "60"))
		return
	}
	hdrs := []sip.Header{
		sip.NewHeader("Allow", allowedMethods),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay"),
		sip.NewHeader("Accept-Language", "en")}
	if tags := s.supportedTags(); tags != "" {
		hdrs = append(hdrs, sip.NewHeader("Supported", tags))
	}
	s.respond(tx, req, 200, "OK", hdrs...)
}

// knownMethods are SIP methods voxgate recognises but does not serve: they get
// 405 with Allow; anything else is unrecognised and gets 501 (RFC 3261 8.2.1).
var knownMethods = map[string]bool{
	"SUBSCRIBE": true, "NOTIFY": true, "MESSAGE": true,
	"PRACK": true, "PUBLISH": true,
}

func (s *Server) handleUnknown(req *sip.Request, tx sip.ServerTransaction) {
	if knownMethods[string(req.Method)] {
		s.respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allowedMethods))
		return
	}
	s.respond(tx, req, 501, "Not Implemented", sip.NewHeader("Allow", allowedMethods))
}

func (s *Server) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callFor(req)
	if c != nil && len(req.Body()) > 0 {
		c.setAckSDP(req.Body()) // the answer to a late offer, read once the ACK is in
	}
	_ = s.dialogs.ReadAck(req, tx)
	if c != nil && req.CSeq() != nil {
		c.ackAnswer(req.CSeq().SeqNo, req.Body()) // the answer to a re-INVITE without SDP
		c.gotAck(req.CSeq().SeqNo)                // stops re-INVITE 200 retransmissions
	}
}

func (s *Server) callFor(req *sip.Request) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := s.calls[id]; c != nil {
			return c
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		return s.calls[id]
	}
	return nil
}

func (s *Server) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callFor(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.remoteBye(req, tx)
}

func (s *Server) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callFor(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(h.Value())
	}
	if !strings.HasPrefix(ct, "application/dtmf-relay") {
		s.respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay"))
		return
	}
	d, ok := parseDTMFRelay(req.Body())
	if !ok {
		s.respond(tx, req, 400, "Bad Request (no DTMF Signal in body)")
		return
	}
	// The digit is taken before the 200 goes out: whoever sees the 200 can
	// count on it (the handlers OnDTMF sets must not block).
	c.log.Debug("DTMF digit received", "via", "INFO") // never the digit: it may be a PIN
	c.sess.recordDTMF(d)
	c.gotDTMF(d)
	s.respond(tx, req, 200, "OK")
}

// Origin says where a call comes from; the dialplan picks a context by it.
type Origin struct {
	// Kind is "user" (an authenticated local user), "trunk" (a carrier) or
	// "guest" (anyone else: may reach internal numbers, never a trunk).
	Kind string
	// Name is the user or trunk name.
	Name string
}

func (s *Server) trunkByAddr(ip string) *TrunkConfig {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil
	}
	for i := range s.cfg.Trunks {
		for _, p := range s.cfg.Trunks[i].prefixes {
			if p.Contains(a) {
				return &s.cfg.Trunks[i]
			}
		}
	}
	return nil
}

// classify authenticates an INVITE as far as needed and tells its origin.
func (s *Server) classify(req *sip.Request, tx sip.ServerTransaction) (Origin, bool) {
	switch o, ok, bad := s.cascadeOrigin(req); { // another node of the cluster, for a room hosted here
	case bad:
		s.respond(tx, req, 400, "Bad Request (room name in "+CascadeHeader+")")
		return Origin{}, false
	case ok:
		return o, true
	}
	if t := s.trunkByAddr(sourceIP(req)); t != nil {
		return Origin{Kind: "trunk", Name: t.Name}, true
	}
	from := req.From().Address
	h := req.GetHeader("Proxy-Authorization")
	// A carrier that authenticates to us: its From user is a trunk's
	// inbound_user (or it already offers that user's credentials).
	trunkUser := func(name string) (User, bool) {
		for i := range s.cfg.Trunks {
			if t := &s.cfg.Trunks[i]; t.InboundUser != "" && t.InboundUser == name {
				return User{Name: t.InboundUser, Password: t.InboundPassword}, true
			}
		}
		return User{}, false
	}
	claims := from.User
	if h != nil {
		if creds, err := ParseCredentials(h.Value()); err == nil {
			claims = creds.Username
		}
	}
	if _, ok := trunkUser(claims); ok {
		name, ok := s.authenticateWith(req, tx, "Proxy-Authorization", 407, trunkUser)
		if !ok {
			return Origin{}, false
		}
		for i := range s.cfg.Trunks {
			if s.cfg.Trunks[i].InboundUser == name {
				return Origin{Kind: "trunk", Name: s.cfg.Trunks[i].Name}, true
			}
		}
	}
	_, local := s.users.Lookup(from.User)
	if h == nil && !local {
		return Origin{Kind: "guest", Name: from.User}, true
	}
	// A caller claiming to be a local user (or offering credentials) must prove it.
	user, ok := s.authenticate(req, tx, "Proxy-Authorization", 407)
	if !ok {
		return Origin{}, false
	}
	return Origin{Kind: "user", Name: user}, true
}

func (s *Server) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") {
		s.handleReinvite(req, tx)
		return
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.respond(tx, req, 503, "Service Unavailable (shutting down)", sip.NewHeader("Retry-After", "30"))
		return
	}
	if req.Contact() == nil {
		s.respond(tx, req, 400, "Bad Request (missing Contact)")
		return
	}
	origin, ok := s.classify(req, tx)
	if !ok {
		return
	}
	replaces, ok := s.replacesFor(req, tx) // refer.go
	if !ok {
		return
	}
	// An INVITE without SDP (a late offer, RFC 3261 13.2.1): voxgate offers
	// in its 200 and takes the answer from the ACK.
	accept := s.acceptedCodecs()
	late := len(req.Body()) == 0
	mo := mediaOffer{Codec: accept[0], Direction: SendRecv, Ptime: 20, Index: -1} // until the ACK answers
	// A browser's WebRTC offer is answered by pion and stands here as a
	// plain offer from the relay (webrtc.go).
	wl, offer, err := s.webrtcAnswer(s.ctx, req)
	kept := false
	defer func() {
		if !kept {
			wl.close()
		}
	}()
	if !late && err == nil {
		mo, err = s.negotiate(offer, accept)
	}
	policy := s.srtpPolicyFor(origin)
	if wl != nil {
		policy = SRTPOff // the browser's leg is DTLS-SRTP; the relay is local
	}
	var srtpLocal, srtpRemote *cryptoAttr
	if err == nil && !late {
		srtpLocal, srtpRemote, err = answerSRTP(policy, &mo, nil)
	}
	if err != nil {
		code := 488
		if errors.Is(err, ErrBadSDP) {
			code = 400
		}
		s.log.Info("call refused: its offer", "call_id", req.CallID().Value(), "from", req.From().Address.User,
			"source", logSource(req), "webrtc", wl != nil, "status", code, "error", err)
		s.respond(tx, req, code, reasonFor(code, err), sdpWarning(err))
		return
	}
	timer, ok := s.timerRequest(req, tx) // 422 when too short
	if !ok {
		return
	}
	sess, err := newRTPSession(s.log, s.ports, s.mediaIP)
	if err != nil {
		reason := "Service Unavailable (no media ports)"
		if errors.Is(err, ErrNoFiles) {
			s.counters.fdExhausted.Add(1)
			reason = "Service Unavailable (out of file descriptors)"
			s.log.Error("sip: out of file descriptors: calls are refused until some close (raise the open files limit)", "error", err)
		} else {
			s.log.Error("no media port", "error", err)
		}
		s.respond(tx, req, 503, reason)
		return
	}
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		sess.close()
		s.respond(tx, req, 400, "Bad Request ("+shortErr(err)+")")
		return
	}
	c := newInboundCall(s, req, dlg, sess, &mo, origin)
	if origin.Kind == "cascade" {
		c.cascade, _, _ = s.cascadeOf(req)
	}
	if wl != nil {
		wl.connect(netip.AddrPortFrom(s.mediaIP, uint16(sess.port)))
		c.wrtc, kept = wl, true
	}
	if origin.Kind == "trunk" {
		if tc := s.trunkConfig(origin.Name); tc != nil {
			c.caller = tc.CallerID.inbound(req) // normalised, or anonymous
		}
	}
	c.timer.neg = timer
	c.replaces = replaces
	if late {
		c.lateOffer = true
		c.local.Codecs, c.local.PTs, c.local.DTMFPT, c.local.DTMFRate, c.local.CNPT = accept, nil, 101, 8000, s.offerCN(accept)
		for _, k := range c.local.Codecs {
			c.local.PTs = append(c.local.PTs, k.PT)
		}
		c.local.Direction = SendRecv
	}
	s.track(c)
	defer c.finish()
	if err := c.initSRTP(policy, late, &mo, srtpLocal, srtpRemote); err != nil {
		c.Reject(488, reasonFor(488, err))
		return
	}
	c.log.Info("incoming call", "from", req.From().Address.User, "to", c.dialed, "origin", origin.Kind+":"+origin.Name,
		"codec", mo.Codec.Name, "late_offer", late, "source", logSource(req), "srtp", c.SRTP())
	s.handler.HandleCall(c.ctx, c)
	if c.state() == stateAnswered {
		<-c.Done() // hold the INVITE handler until the call ends
	}
}

func reasonFor(code int, err error) string {
	base := "Not Acceptable Here"
	if code == 400 {
		base = "Bad Request"
	}
	return base + " (" + shortErr(err) + ")"
}

// negotiate reads a peer's SDP (an offer, or the answer to ours) as
// parseOffer does, without comfort noise when the configuration turns it
// off.
func (s *Server) negotiate(body []byte, accept []codecInfo) (mediaOffer, error) {
	mo, err := parseOffer(body, accept)
	if !s.cfg.comfortNoise() {
		mo.CNPT = 0
	}
	return mo, err
}

// offerCN is the comfort noise payload type to offer with codecs: CN/8000
// when one of them is G.711 and the configuration allows it.
func (s *Server) offerCN(codecs []codecInfo) uint8 {
	if !s.cfg.comfortNoise() {
		return 0
	}
	for _, c := range codecs {
		if c.g711() {
			return cnPT
		}
	}
	return 0
}

func (s *Server) acceptedCodecs() []codecInfo {
	out := make([]codecInfo, 0, len(s.cfg.Codecs))
	for _, n := range s.cfg.Codecs {
		c, _ := codecByName(n)
		out = append(out, c)
	}
	return out
}

func (s *Server) track(c *Call) {
	s.mu.Lock()
	s.calls[c.dialogID] = c
	s.mu.Unlock()
}

func (s *Server) untrack(c *Call) {
	s.mu.Lock()
	if s.calls[c.dialogID] == c {
		delete(s.calls, c.dialogID)
	}
	s.mu.Unlock()
}

func (s *Server) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callFor(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.reinvite(req, tx)
}

// localPort returns the port of our first listener of transport tp.
func (s *Server) localPort(tp string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.EqualFold(tp, "tls") {
		return s.tlsPort
	}
	for _, a := range s.addrs {
		switch a := a.(type) {
		case *net.UDPAddr:
			if strings.EqualFold(tp, "udp") {
				return a.Port
			}
		case *net.TCPAddr:
			if !strings.EqualFold(tp, "udp") {
				return a.Port
			}
		}
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// readyConn signals its first read.
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}
