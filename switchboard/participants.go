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
	typ := "unmuted"
	if muted {
		typ = "muted"
	}
	s.hub.notify(room, id, typ)
}
