package sip

import (
	"encoding/binary"
	"errors"
	"strings"
)

// RFC 4733 telephone-event payload:
//
//	 0                   1                   2                   3
//	|     event     |E|R| volume    |          duration             |
var errShortEvent = errors.New("telephone-event payload shorter than 4 bytes")

const dtmfDigits = "0123456789*#ABCD"

// dtmfEvent is one decoded RFC 4733 event payload.
type dtmfEvent struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16
}

func parseDTMFEvent(b []byte) (dtmfEvent, error) {
	if len(b) < 4 {
		return dtmfEvent{}, errShortEvent
	}
	return dtmfEvent{Event: b[0], End: b[1]&0x80 != 0, Volume: b[1] & 0x3F, Duration: binary.BigEndian.Uint16(b[2:])}, nil
}

func (e dtmfEvent) appendTo(b []byte) []byte {
	f := e.Volume & 0x3F
	if e.End {
		f |= 0x80
	}
	return append(b, e.Event, f, byte(e.Duration>>8), byte(e.Duration))
}

// digitOf returns the character of a DTMF event code, or 0 for non-DTMF events.
func digitOf(event uint8) rune {
	if int(event) < len(dtmfDigits) {
		return rune(dtmfDigits[event])
	}
	return 0
}

// eventOf returns the event code of a DTMF character.
func eventOf(d rune) (uint8, bool) {
	i := strings.IndexRune(dtmfDigits, d)
	if i < 0 {
		i = strings.IndexRune(dtmfDigits, d-'a'+'A') // a-d
	}
	return uint8(i), i >= 0
}

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
			if _, ok := eventOf(rune(v[0])); ok {
				return []rune(strings.ToUpper(v))[0], true
			}
		}
		return 0, false
	}
	return 0, false
}
