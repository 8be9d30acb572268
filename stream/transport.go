package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// encoder writes one framing's messages to the bot.
type encoder interface {
	open(b []byte, cfg *Config) [][]byte // the messages that start the stream
	// media writes 20 ms of the tracks the bot gets (inbound: what the
	// caller says, outbound: what it hears) as one or two messages into
	// bufs and says how many.
	media(bufs *[2][]byte, in, out []int16) int
	dtmf(b []byte, digit rune) []byte
	// mark echoes a mark, played or cleared; nil: the framing has no marks.
	mark(b []byte, name string, cleared bool) []byte
	stop(b []byte) []byte // nil: no stop message, only the close
	sidString() string
	ctlText() bool   // control messages go as WebSocket text messages
	mediaText() bool // so does audio
}

// Transport errors that end a stream.
var (
	errClosed = errors.New("closed by the bot")
	// errClosing: a write after the bot's close was answered (the reader
	// ends the stream cleanly as it returns the close).
	errClosing   = errors.New("the bot is closing the stream")
	errOversized = fmt.Errorf("the bot sent a message over %d bytes", MaxMessage)
)

// transport carries messages to and from the bot: WebSocket messages, or
// AudioSocket frames over TCP.
type transport interface {
	send(b []byte, text bool) error
	// recv returns the next message (valid until the next call); text
	// tells a WebSocket text message. A clean close is errClosed.
	recv() (msg []byte, text bool, err error)
	// bye ends the stream cleanly after last (the stop message, if any).
	bye(last []byte, text bool)
	close()
}

func dialTransport(ctx context.Context, cfg *Config) (transport, error) {
	if strings.HasPrefix(cfg.URL, "tcp://") {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := d.DialContext(dctx, "tcp", strings.TrimPrefix(cfg.URL, "tcp://"))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return &tcpTransport{c: c, r: bufio.NewReader(c), buf: make([]byte, 0, 3+65535)}, nil
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := d.DialContext(ctx, cfg.URL, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: %s answered %s", ErrRefused, cfg.URL, resp.Status)
		}
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	conn.SetReadLimit(MaxMessage)
	return &wsTransport{c: conn}, nil
}

type wsTransport struct {
	c   *websocket.Conn
	buf []byte // the last message read
}

func msgType(text bool) int {
	if text {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

func (w *wsTransport) send(b []byte, text bool) error {
	_ = w.c.SetWriteDeadline(time.Now().Add(writeWait))
	err := w.c.WriteMessage(msgType(text), b)
	if errors.Is(err, websocket.ErrCloseSent) {
		return errClosing
	}
	return err
}

func (w *wsTransport) recv() ([]byte, bool, error) {
	// Into a buffer kept from message to message (not ReadMessage's new
	// one each time): a talking bot sends 50 a second.
	typ, r, err := w.c.NextReader()
	if err == nil {
		w.buf = w.buf[:0]
		for {
			if len(w.buf) == cap(w.buf) {
				w.buf = append(w.buf, 0)[:len(w.buf)]
			}
			var n int
			n, err = r.Read(w.buf[len(w.buf):cap(w.buf)])
			w.buf = w.buf[:len(w.buf)+n]
			if err == io.EOF {
				return w.buf, typ == websocket.TextMessage, nil
			}
			if err != nil {
				break
			}
		}
	}
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return nil, false, errOversized
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
		return nil, false, errClosed
	}
	return nil, false, err
}

func (w *wsTransport) bye(last []byte, text bool) {
	_ = w.c.SetWriteDeadline(time.Now().Add(time.Second))
	if last != nil {
		_ = w.c.WriteMessage(msgType(text), last)
	}
	_ = w.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "call ended"))
}

func (w *wsTransport) close() { w.c.Close() }

// tcpTransport carries AudioSocket frames over TCP, as Asterisk does.
type tcpTransport struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func (t *tcpTransport) send(b []byte, _ bool) error {
	_ = t.c.SetWriteDeadline(time.Now().Add(writeWait))
	_, err := t.c.Write(b)
	return err
}

func (t *tcpTransport) recv() ([]byte, bool, error) {
	b := t.buf[:3]
	if _, err := io.ReadFull(t.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, errClosed // an AudioSocket peer may hang up by closing
		}
		return nil, false, err
	}
	n := int(b[1])<<8 | int(b[2])
	b = t.buf[:3+n]
	if _, err := io.ReadFull(t.r, b[3:]); err != nil {
		return nil, false, err
	}
	return b, false, nil
}

func (t *tcpTransport) bye(last []byte, _ bool) {
	_ = t.c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = t.c.Write(last)
}

func (t *tcpTransport) close() { t.c.Close() }
