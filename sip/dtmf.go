package sip

import (
	"strings"

	"github.com/voxgate/voxgate/audio"
)

// parseDTMFRelay reads the Signal of an application/dtmf-relay INFO body:
//
//	Signal=5
//	Duration=160
func parseDTMFRelay(body []byte) (rune, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "signal") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "10" {
			return '*', true
		}
		if v == "11" {
			return '#', true
		}
		if len(v) == 1 {
			if _, ok := audio.EventOf(rune(v[0])); ok {
				return []rune(strings.ToUpper(v))[0], true
			}
		}
		return 0, false
	}
	return 0, false
}
