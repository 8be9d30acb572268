package webclient

// QueueWrites tells a room to write to a browser's leg from a goroutine of
// its own: a write goes through pion's SRTP and ICE and, over a TURN/TCP
// relay, can wait on a congested connection, which must never hold up a
// room's clock.
func (c *Call) QueueWrites() bool { return true }

// AcceptsDTX: a browser's jitter buffer (NetEq) takes gaps in silence,
// whatever its SDP says about usedtx.
func (c *Call) AcceptsDTX() bool { return true }
