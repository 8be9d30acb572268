package peertest

// Kill ends baresip at once with SIGKILL, as a phone that loses power or
// network does: it unregisters nothing and answers nothing from now on.
func (b *Baresip) Kill() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}
