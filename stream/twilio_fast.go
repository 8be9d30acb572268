package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/voxgate/voxgate/audio"
)

// The bot's media messages are most of what it sends (50 a second while
// it talks): parseTwilioMedia reads the usual shape of one without
// encoding/json's reflection and without allocating, and says ok false for
// anything else, which then goes the general way (parseTwilioSlow). On
// every input it accepts, it gives what the general way gives (a fuzz test
// holds it to that).

// parseTwilioMedia decodes the payload of a valid media message into PCM
// appended to pcm[:0].
func parseTwilioMedia(data []byte, pcm []int16) ([]int16, bool) {
	if !json.Valid(data) { // the general way says what is wrong
		return nil, false
	}
	payload, ok := scanTwilioMedia(data)
	if !ok || len(payload)%4 != 0 {
		return nil, false
	}
	// Base64 in chunks (a multiple of 4 characters, padding only in the
	// last), each decoded to mu-law on the stack and then to PCM.
	var ulaw [384]byte
	pcm = pcm[:0]
	for len(payload) > 0 {
		c := min(len(payload), 512)
		n, err := base64.StdEncoding.Decode(ulaw[:], payload[:c])
		if err != nil || (n < 384 && c < len(payload)) { // padding before the end
			return nil, false
		}
		pcm = audio.DecodeUlaw(pcm, ulaw[:n])
		payload = payload[c:]
	}
	return pcm, true
}

// scanTwilioMedia finds the payload of {"event":"media","media":{"payload":"..."}}
// (keys in any order, others skipped) in valid JSON. ok is false for other
// events and wherever encoding/json's reading could differ: escapes in the
// keys, event or payload, keys matching ours only without regard to case,
// values of other types than ours.
func scanTwilioMedia(data []byte) (payload []byte, ok bool) {
	s := scanner{b: data}
	var event []byte
	found := false
	if !s.byte('{') {
		return nil, false
	}
	for first := true; ; first = false {
		if s.byte('}') {
			break
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return nil, false
		}
		switch {
		case string(key) == "event":
			if event, ok = s.plainString(); !ok {
				return nil, false
			}
		case string(key) == "media":
			if payload, found, ok = s.mediaObject(); !ok {
				return nil, false
			}
		case bytes.EqualFold(key, []byte("event")) || bytes.EqualFold(key, []byte("media")):
			return nil, false // encoding/json would take it as ours
		default:
			if !s.skipValue() {
				return nil, false
			}
		}
	}
	if string(event) != BotMedia || !found {
		return nil, false
	}
	return payload, true
}

// scanner walks valid JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// byte consumes c (after white space) if it comes next.
func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string without escapes; false for anything else.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			return nil, false
		case '"':
			s.i++
			return s.b[start : s.i-1], true
		}
		s.i++
	}
	return nil, false
}

// mediaObject reads the media object: its payload, if it has one.
func (s *scanner) mediaObject() (payload []byte, found, ok bool) {
	if !s.byte('{') {
		return nil, false, false // null, or another type: the general way
	}
	for first := true; ; first = false {
		if s.byte('}') {
			return payload, found, true
		}
		if !first && !s.byte(',') {
			return nil, false, false
		}
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return nil, false, false
		}
		switch {
		case string(key) == "payload":
			if payload, ok = s.plainString(); !ok {
				return nil, false, false
			}
			found = true
		case bytes.EqualFold(key, []byte("payload")):
			return nil, false, false
		default:
			if !s.skipValue() {
				return nil, false, false
			}
		}
	}
}

// skipValue steps over one value of valid JSON.
func (s *scanner) skipValue() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		s.i++
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '\\':
				s.i += 2
				continue
			case '"':
				s.i++
				return true
			}
			s.i++
		}
		return false
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			case '"':
				if !s.skipValue() {
					return false
				}
				continue
			}
			s.i++
		}
		return false
	}
	for s.i < len(s.b) { // a number, true, false or null
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return true
		}
		s.i++
	}
	return true
}
