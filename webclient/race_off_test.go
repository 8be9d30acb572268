//go:build !race

package webclient

const raceEnabled = false
