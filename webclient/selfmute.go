package webclient

// OnSelfMute sets the function called when the page mutes or unmutes its
// own microphone (its mute button), so that the room shows it muted.
// A page muted already is shown muted at once.
func (c *Call) OnSelfMute(f func(on bool)) {
	c.mu.Lock()
	c.onSelfMute = f
	muted := c.muted
	c.mu.Unlock()
	if muted && f != nil {
		f(true)
	}
}

// setMuted records the page's own mute and tells the room.
func (c *Call) setMuted(on bool) {
	c.mu.Lock()
	changed := c.muted != on
	c.muted = on
	f := c.onSelfMute
	c.mu.Unlock()
	if changed && f != nil {
		f(on)
	}
}
