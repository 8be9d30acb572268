//go:build race

package stream

// raceEnabled: the race detector allocates, so allocation counts mean nothing.
const raceEnabled = true
