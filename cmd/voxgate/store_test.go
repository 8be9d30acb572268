package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
)

// One voxgate per data_dir: a second one is refused with the first's pid;
// the lock goes with the first's Close.
func TestDataDirLocked(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &Config{DataDir: filepath.Join(t.TempDir(), "state")}
	cfg.Store.Retention = time.Hour
	first, err := openStore(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openStore(cfg, log)
	if err == nil || !strings.Contains(err.Error(), "in use by another voxgate") || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second open of the data_dir: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := openStore(cfg, log)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
	if st, _ := openStore(&Config{}, log); st != nil {
		t.Fatal("a store without data_dir")
	}
}

// The SIP side's bindings go through the store and back unchanged.
func TestSIPLocationsRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := sipLocations{st}
	b := sip.Binding{AOR: "alice", Contact: "sip:alice@127.0.0.1:5062;transport=tcp", Source: "127.0.0.1:5062", Transport: "TCP",
		CallID: "abc", CSeq: 42, Expires: time.Now().Add(time.Hour).UTC().Round(0), UserAgent: "baresip"}
	if err := l.SaveBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := l.LoadBindings(ctx, time.Now())
	if err != nil || len(got) != 1 || got[0] != b {
		t.Fatalf("loaded %+v (%v), want %+v", got, err, b)
	}
	if err := l.DeleteBinding(ctx, "alice", b.Contact); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.LoadBindings(ctx, time.Now()); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
}

func TestStoreConfig(t *testing.T) {
	base := "sip:\n  listen:\n    - {transport: udp, addr: \"127.0.0.1:5060\"}\n"
	cfg, err := parseConfig("v.yaml", []byte(base+"data_dir: /var/lib/voxgate\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/voxgate" || cfg.Store.Retention != store.DefaultRetention {
		t.Fatalf("data_dir %q retention %v, want the 30-day default", cfg.DataDir, cfg.Store.Retention)
	}
	cfg, err = parseConfig("v.yaml", []byte(base+"store: {retention: 2160h}\n"))
	if err != nil || cfg.Store.Retention != 90*24*time.Hour {
		t.Fatalf("retention 2160h: %v %v", cfg, err)
	}
	_, err = parseConfig("v.yaml", []byte(base+"store: {retention: -1h}\n"))
	if err == nil || !strings.Contains(err.Error(), "store.retention") {
		t.Fatalf("negative retention: %v", err)
	}
	if _, err := os.Stat("data"); err == nil {
		t.Fatal("a test left ./data in cmd/voxgate")
	}
}

// /readyz fails while the store does not answer.
func TestReadyzStore(t *testing.T) {
	g := startGateway(t, nil)
	get := func() (int, string) {
		res, err := http.Get(g.web + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(); code != 200 {
		t.Fatalf("/readyz with the store up: %d %s", code, body)
	}
	g.app.store.Close()
	if code, body := get(); code != 503 || !strings.Contains(body, `"store"`) {
		t.Fatalf("/readyz with the store closed: %d %s", code, body)
	}
}
