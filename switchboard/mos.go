package switchboard

import (
	"strings"
	"time"
)

// The MOS estimate is the ITU-T G.107 E-model (06/2015), simplified as in
// Cole and Rosenbluth, "Voice over IP performance monitoring" (ACM SIGCOMM
// CCR 31(2), 2001):
//
//	R = 93.2 - Id(d) - Ie_eff(codec, Ppl)
//
// 93.2 is R0 - Is with every default of G.107 Table 3 (no echo, no noise,
// advantage factor A = 0).
//
// Delay impairment, d the one-way mouth-to-ear delay in ms (H the step
// function):
//
//	Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)
//
// Equipment impairment with packet loss, G.107 equation 7-29 with random
// loss (BurstR = 1), Ppl the loss in percent:
//
//	Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)
//
// Ie and Bpl per codec from ITU-T G.113 Appendix I where it lists them
// (G.711 with packet loss concealment: Ie 0, Bpl 25.1). G.113 gives no
// narrowband-scale values for G.722 and Opus; they are counted here as
// G.711 with concealment (Ie 0) and a Bpl for their better concealment, so
// their MOS is capped like G.711's at 4.41, which undersells wideband audio.
//
// MOS from R (G.107 Annex B, equation B-4):
//
//	R < 0: 1;  R > 100: 4.5;  else 1 + 0.035 R + R (R - 60)(100 - R) 7e-6
//
// It is an estimate from network figures, not a listening test: it knows
// nothing of echo, noise, levels or transcoding in the path.

// codecImpairment are a codec's Ie and Bpl.
type codecImpairment struct{ ie, bpl float64 }

var impairments = map[string]codecImpairment{
	"pcmu": {0, 25.1},
	"pcma": {0, 25.1},
	"g722": {0, 25.1},
	"opus": {0, 30}, // Opus concealment and in-band FEC hold up better under loss
}

// EstimateMOS returns the E-model's estimated MOS (1 to 4.5) for a codec
// (by its RTP name), a packet loss in percent and a one-way delay.
func EstimateMOS(codec string, lossPercent float64, delay time.Duration) float64 {
	imp, ok := impairments[strings.ToLower(codec)]
	if !ok {
		imp = codecImpairment{0, 25.1}
	}
	return MOSFromR(RFactor(imp.ie, imp.bpl, lossPercent, delay))
}

// RFactor is the simplified E-model's transmission rating R.
func RFactor(ie, bpl, lossPercent float64, delay time.Duration) float64 {
	d := float64(delay) / float64(time.Millisecond)
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	ppl := max(lossPercent, 0)
	ieEff := ie + (95-ie)*ppl/(ppl+bpl)
	return 93.2 - id - ieEff
}

// MOSFromR converts R to MOS (G.107 Annex B).
func MOSFromR(r float64) float64 {
	switch {
	case r < 0:
		return 1
	case r > 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// EstimateDelay is the one-way mouth-to-ear delay the MOS estimate assumes:
// half the round trip (0 when unknown), 20 ms of packetisation, 40 ms of
// jitter buffer and codec look-ahead, and twice the measured jitter (the
// adaptive buffer grows with it).
func EstimateDelay(rtt, jitter time.Duration) time.Duration {
	return rtt/2 + 60*time.Millisecond + 2*jitter
}
