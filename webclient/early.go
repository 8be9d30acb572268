package webclient

import "context"

// Progress lets the caller hear audio before the answer (a ringback tone,
// a carrier's announcement). A page's media flows from the moment it
// calls, so there is nothing to do.
func (c *Call) Progress(context.Context) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
		return nil
	}
}

// PlaysOwnRingback is false: the page plays what voxgate sends it.
func (c *Call) PlaysOwnRingback() bool { return false }
