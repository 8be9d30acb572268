package webclient

import (
	"reflect"
	"testing"
)

// remoteControl is a Control that also knows rooms hosted on other nodes.
type remoteControl struct {
	fakeControl
	remote []RoomInfo
}

func (r *remoteControl) RemoteRooms() []RoomInfo { return r.remote }

// A page's room-stats come from the room its leg is in: a room hosted on
// another node first (its host's state and quality), else a room here;
// the leg's loss is rounded to 0.1 %, a leg without a codec yet (the host
// has not told its quality) is left out.
func TestRoomStatsOf(t *testing.T) {
	remote := RoomInfo{Name: "8400", Locked: true, Recording: "/rec/8400.wav", Remote: true, Legs: []LegInfo{
		{ID: "sip-7", Codec: "PCMU", Packets: 997, Lost: 3, JitterMS: 2.345},
		{ID: "bob/c1", Codec: "opus", Packets: 500, Lost: -2, JitterMS: 1},
		{ID: "sip-9"},
	}}
	for _, tc := range []struct {
		name   string
		c      Control
		self   string
		want   Message
		wantOK bool
	}{
		{name: "local room", c: &fakeControl{}, self: "alice/c1", wantOK: true,
			want: Message{Type: "room-stats", Room: "8001", Stats: []LegQuality{}}},
		{name: "no room", c: &fakeControl{}, self: "bob/c1"},
		{name: "remote room", c: &remoteControl{remote: []RoomInfo{remote}}, self: "bob/c1", wantOK: true,
			want: Message{Type: "room-stats", Room: "8400", Locked: true, Recording: true, Stats: []LegQuality{
				{Leg: "sip-7", Codec: "PCMU", LossPct: 0.3, JitterMS: 2.3}, {Leg: "bob/c1", Codec: "opus", JitterMS: 1}}}},
		{name: "remote room listed, leg here", c: &remoteControl{remote: []RoomInfo{remote}}, self: "alice/c1", wantOK: true,
			want: Message{Type: "room-stats", Room: "8001", Stats: []LegQuality{}}},
		{name: "remote room before a local one with the leg", c: &remoteControl{remote: []RoomInfo{{Name: "8400", Legs: []LegInfo{{ID: "alice/c1", Codec: "opus"}}}}},
			self: "alice/c1", wantOK: true, want: Message{Type: "room-stats", Room: "8400", Stats: []LegQuality{{Leg: "alice/c1", Codec: "opus"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := roomStatsOf(tc.c, tc.self)
			if ok != tc.wantOK || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("roomStatsOf(%s) = %+v, %v; want %+v, %v", tc.self, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
