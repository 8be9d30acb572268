package sip

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// StreamConfig bounds SIP over TCP and TLS.
type StreamConfig struct {
	// IdleTimeout closes a connection that sent nothing (not even a CRLF
	// keep-alive) for this long (default 10m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// HeaderTimeout is how long a started message may take to arrive whole
	// (default 10s): a request whose headers never end is dropped.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// MaxConnections per listener (default 4096) and MaxPerSource per
	// source address (default 64); more are refused at once.
	MaxConnections int `yaml:"max_connections"`
	MaxPerSource   int `yaml:"max_per_source"`
	// MaxMessage is the largest message taken (default 64 KiB); a larger one
	// is answered 413 and its connection closed.
	MaxMessage int `yaml:"max_message"`
}

func (c *StreamConfig) defaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 4096
	}
	if c.MaxPerSource == 0 {
		c.MaxPerSource = 64
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = 64 << 10
	}
}

// streamListener is a TCP listener that outlives accept errors (out of file
// descriptors above all: logged, counted, retried with back-off) and caps
// connections per listener and per source address.
type streamListener struct {
	net.Listener
	cfg      StreamConfig
	log      *slog.Logger
	counters *counters
	done     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	total  int
	perSrc map[string]int
}

func newStreamListener(ln net.Listener, cfg StreamConfig, log *slog.Logger, c *counters) *streamListener {
	return &streamListener{Listener: ln, cfg: cfg, log: log, counters: c, done: make(chan struct{}), perSrc: map[string]int{}}
}

// Close stops the listener. Idempotent.
func (l *streamListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// Accept returns the next connection within the caps; it returns an error
// only once the listener is closed.
func (l *streamListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				l.counters.fdExhausted.Add(1)
				l.log.Error("sip: out of file descriptors: connections wait until some close (raise the open files limit)", "listener", l.Addr(), "error", err)
			} else {
				l.counters.acceptErrors.Add(1)
				l.log.Warn("sip: accept failed; retrying", "listener", l.Addr(), "error", err, "backoff", backoff)
			}
			select {
			case <-time.After(backoff):
			case <-l.done:
				return nil, net.ErrClosed
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		src := hostOf(c.RemoteAddr())
		l.mu.Lock()
		full := l.total >= l.cfg.MaxConnections || l.perSrc[src] >= l.cfg.MaxPerSource
		if !full {
			l.total++
			l.perSrc[src]++
		}
		l.mu.Unlock()
		if full {
			l.counters.connsRefused.Add(1)
			l.log.Warn("sip: connection refused: too many connections", "source", c.RemoteAddr(), "max", l.cfg.MaxConnections, "max_per_source", l.cfg.MaxPerSource)
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *streamListener) release(src string) {
	l.mu.Lock()
	l.total--
	if l.perSrc[src]--; l.perSrc[src] <= 0 {
		delete(l.perSrc, src)
	}
	l.mu.Unlock()
}

// connections is the number of open connections.
func (l *streamListener) connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, _ := net.SplitHostPort(a.String())
	return h
}

// countedConn gives its place under the caps back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// messageListener hands out connections that frame and check SIP messages
// before sipgo sees them (see messageConn).
type messageListener struct {
	net.Listener
	cfg      StreamConfig
	log      *slog.Logger
	counters *counters
}

func (l *messageListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &messageConn{Conn: c, cfg: l.cfg, log: l.log, counters: l.counters, parser: sip.NewParser()}, nil
}

// messageConn frames a stream into SIP messages by Content-Length (RFC 3261
// 18.3) and checks each request as the UDP filter does: a request that does
// not parse or lacks a mandatory header is answered 400 with a reason on
// the connection and never reaches sipgo (which would close the
// connection without a word). It also closes a connection idle for the
// idle timeout, or whose started message does not arrive whole in the
// header timeout.
type messageConn struct {
	net.Conn
	cfg      StreamConfig
	log      *slog.Logger
	counters *counters
	parser   *sip.Parser

	in  []byte // read, not framed yet
	out []byte // framed and checked, for sipgo
	buf [4096]byte
}

var errFraming = errors.New("sip stream cannot be framed")

func (c *messageConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if err := c.frame(); err != nil {
			return 0, err
		}
		if len(c.out) > 0 {
			break
		}
		timeout := c.cfg.IdleTimeout
		if len(c.in) > 0 {
			timeout = c.cfg.HeaderTimeout
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.Conn.Read(c.buf[:])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if len(c.in) > 0 {
					c.log.Info("sip: message not complete in time; closing", "source", c.RemoteAddr(), "timeout", c.cfg.HeaderTimeout, "bytes", len(c.in))
				} else {
					c.log.Debug("sip: idle connection closed", "source", c.RemoteAddr(), "timeout", c.cfg.IdleTimeout)
				}
				c.Conn.Close()
			}
			return 0, err
		}
		c.in = append(c.in, c.buf[:n]...)
	}
	n := copy(p, c.out)
	c.out = c.out[:copy(c.out, c.out[n:])]
	return n, nil
}

// frame moves every complete message (and keep-alive CRLFs) from in to
// out, answering malformed requests itself.
func (c *messageConn) frame() error {
	for len(c.in) > 0 {
		if c.in[0] == '\r' || c.in[0] == '\n' { // keep-alives between messages (RFC 5626 3.5.1)
			k := 0
			for k < len(c.in) && (c.in[k] == '\r' || c.in[k] == '\n') {
				k++
			}
			if len(c.out) > 0 { // keep-alives go to sipgo on their own read
				return nil
			}
			c.out = append(c.out, c.in[:k]...)
			c.in = c.in[:copy(c.in, c.in[k:])]
			return nil
		}
		end := bytes.Index(c.in, []byte("\r\n\r\n"))
		sep := 4
		if lf := bytes.Index(c.in, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
			end, sep = lf, 2
		}
		if end < 0 {
			if len(c.in) > c.cfg.MaxMessage {
				return c.refuse(c.in, "Request Entity Too Large", 413)
			}
			return nil // the headers are not all here yet
		}
		head := c.in[:end]
		length, ok := contentLength(head)
		if !ok {
			return c.refuse(head, "Bad Request (malformed Content-Length)", 400)
		}
		total := end + sep + length
		if total > c.cfg.MaxMessage {
			return c.refuse(head, "Request Entity Too Large", 413)
		}
		if len(c.in) < total {
			return nil // the body is not all here yet
		}
		msg := c.in[:total]
		if code, reason := checkMessage(c.parser, msg); code != 0 {
			c.answer(msg, reason, code)
		} else {
			c.out = append(c.out, msg...)
		}
		c.in = c.in[:copy(c.in, c.in[total:])]
	}
	return nil
}

// refuse answers a message that leaves the stream without a boundary to
// resync on, and ends the connection.
func (c *messageConn) refuse(head []byte, reason string, code int) error {
	c.answer(head, reason, code)
	c.Conn.Close()
	return errFraming
}

func (c *messageConn) answer(msg []byte, reason string, code int) {
	c.log.Info("malformed request", "source", c.RemoteAddr(), "transport", "stream", "reason", reason)
	c.counters.malformed.Add(1)
	c.counters.response(code)
	if res := rawResponse(msg, code, reason); res != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Conn.Write(res)
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
}

// contentLength finds Content-Length (or l) in a message's head; a message
// without one has no body (ok), a malformed one is not ok.
func contentLength(head []byte) (int, bool) {
	for _, line := range strings.Split(string(head), "\n") {
		name, value, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length", "l":
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return 0, false
			}
			return n, true
		}
	}
	return 0, true
}
