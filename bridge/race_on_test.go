//go:build race

package bridge

// raceEnabled: the race detector allocates, and sync.Pool drops a share of
// what is put back, so allocation counts mean nothing.
const raceEnabled = true
