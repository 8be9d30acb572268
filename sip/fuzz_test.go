package sip

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// FuzzHandleRequest feeds raw messages to the request handlers: whatever the
// bytes, nothing panics, and every request gets an answer, either from the
// malformed-request filter or from its handler.
func FuzzHandleRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.sip")
	captured, _ := filepath.Glob("../testdata/sip/*.sip") // from real clients
	torture, _ := filepath.Glob("../testdata/torture/*.sip")
	for _, p := range append(append(files, captured...), torture...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// The transaction timers bound how long a final non-2xx answer waits for
	// its ACK; shrink them so each input takes milliseconds. They are global
	// and stay short: fuzz targets run after every test of the package.
	sip.SetTimers(time.Millisecond, 4*time.Millisecond, 5*time.Millisecond)
	s, _ := testServer(f, nil)
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(append([]byte(nil), data...))
		if err != nil {
			_ = rawResponse(data, 400, "Bad Request (fuzz)") // must not panic
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.IsAck() {
			return
		}
		if missingHeader(req) != "" {
			return // answered 400 by the filter, see TestBadInputGetsClearAnswer
		}
		req.SetSource("127.0.0.1:5099")
		tx := siptest.NewServerTxRecorder(req)
		s.dispatch(req, tx)
		if len(tx.Result()) == 0 {
			t.Fatalf("no answer to\n%s", data)
		}
		for _, res := range tx.Result() {
			if res.StatusCode < 100 || res.StatusCode > 699 {
				t.Fatalf("bad status %d", res.StatusCode)
			}
		}
	})
}

func TestDTMFRelayBody(t *testing.T) {
	for body, want := range map[string]rune{"Signal=5\r\nDuration=160\r\n": '5', "signal= #\n": '#', "Signal=10": '*', "Signal=a": 'A', "Signal=x": 0, "Duration=1": 0} {
		got, ok := parseDTMFRelay([]byte(body))
		if got != want || ok != (want != 0) {
			t.Errorf("%q: %q %v", body, got, ok)
		}
	}
}
