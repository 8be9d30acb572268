package switchboard

// legState is a leg's muted and moderator state, for the pages that show
// its room.
func (s *Switchboard) legState(roomName, id string) (muted, moderator bool) {
	if room, ok := s.rooms.Lookup(roomName); ok {
		for _, l := range room.Stats().Legs {
			if l.ID == id {
				muted = l.Muted
			}
		}
	}
	moderator, _ = s.moderation(roomName, id)
	return muted, moderator
}

// mutedChanged tells the pages in room that leg id was muted or unmuted
// (by a moderator, the API, its keypad or the wait for a moderator).
func (s *Switchboard) mutedChanged(room, id string, muted bool) {
	s.hub.notify(room, id, muted)
}

// showSelfMute shows c muted in room while its caller mutes itself (a
// page's button), until the returned func is called.
func (s *Switchboard) showSelfMute(room string, c Leg) func() {
	sm, ok := c.(SelfMuter)
	if !ok {
		return func() {}
	}
	sm.OnSelfMute(func(on bool) { s.hub.selfMute(room, c.ID(), on) })
	return func() { sm.OnSelfMute(nil) }
}
