package audio

import "math"

// Comfort noise (RFC 3389): a peer that negotiated CN/8000 is sent, in
// silence, a SID packet whose first byte is the noise level, in -dBov
// (0 is the codec's overload point, 127 digital silence), now and then
// instead of a stream of encoded silence; it plays noise of that level
// until the next packet.

// G711NoiseLevel is the RFC 3389 noise level of a G.711 payload (mu-law,
// or A-law when alaw): its mean power in -dBov, 0 to 127.
func G711NoiseLevel(payload []byte, alaw bool) uint8 {
	table := &ulawDecode
	if alaw {
		table = &alawDecode
	}
	var sum float64
	for _, b := range payload {
		v := float64(table[b])
		sum += v * v
	}
	if len(payload) == 0 || sum == 0 {
		return 127
	}
	// dBov: 0 is the power of a full-scale square wave, 32767^2 (RFC 3389
	// section 3.1 takes the overload point of the codec).
	db := 10 * math.Log10(sum/float64(len(payload))/(32767.0*32767.0))
	return uint8(math.Round(min(127, max(0, -db))))
}
