package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
)

// The registration, room and trunk webhooks: a new contact is news, its
// refresh is not, its removal is; room events become room.*; a trunk's
// change becomes trunk.state. Through a real outbox to a real endpoint.
func TestWebhookSources(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		s := ev.Type
		for _, k := range []string{"user", "state", "room", "name", "talking", "trunk", "registered", "reachable"} {
			if v, ok := ev.Data[k]; ok {
				b, _ := json.Marshal(v)
				s += " " + k + "=" + string(b)
			}
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}))
	defer srv.Close()
	db, err := store.Open(context.Background(), t.TempDir()+"/voxgate.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hooks, err := events.New([]events.Endpoint{{Name: "t", URL: srv.URL, Secret: "0123456789abcdef"}}, db,
		events.WithSettings(events.Settings{Poll: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	hooks.Start()
	defer hooks.Close(context.Background())

	ctx := context.Background()
	locs := newHookedLocations(sipLocations{db}, hooks)
	if _, err := locs.LoadBindings(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := sip.Binding{AOR: "bob", Contact: "<sip:bob@127.0.0.1:5062>", Expires: time.Now().Add(time.Hour)}
	for range 3 { // a registration and two refreshes
		if err := locs.SaveBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := locs.DeleteBinding(ctx, "bob", ""); err != nil {
		t.Fatal(err)
	}
	room := roomEvent(hooks)
	room(bridge.Event{Room: "8001", Leg: "l1", Type: "joined", At: time.Now()}, "alice")
	room(bridge.Event{Room: "8001", Leg: "l1", Type: "talking", At: time.Now()}, "alice")
	room(bridge.Event{Room: "8001", Leg: "l1", Type: "kicked", At: time.Now()}, "alice")
	trunkEvent(hooks)(sip.TrunkState{Name: "carrier", Registered: true})
	qualifyEvent(hooks)("carrier", sip.Health{Qualified: true, Reachable: false, LastError: "no answer to OPTIONS within 1s", Since: time.Now()})

	want := []string{
		`registration user="bob" state="registered"`,
		`registration user="bob" state="unregistered"`,
		`room.joined room="8001" name="alice"`,
		`room.talking room="8001" name="alice" talking=true`,
		`room.left room="8001" name="alice"`,
		`trunk.state trunk="carrier" registered=true`,
		`trunk.qualify trunk="carrier" reachable=false`,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // five polls: nothing more may come
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("webhooks\n%q\nwant\n%q", got, want)
	}
}
