package audio

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// mixRates are the sample rates a room mixes at: the rates the resampler
// converts between and Opus runs at, so a room at one of them needs no
// other conversion.
var mixRates = [...]int{8000, 16000, 24000, 48000}

// ErrRate is returned for a sample rate that is not a mixing rate.
var ErrRate = errors.New("not a mixing rate (want " + mixRateList() + ")")

func mixRateList() string {
	var s []string
	for _, r := range mixRates {
		s = append(s, strconv.Itoa(r))
	}
	return orList(s)
}

// MixRates returns the mixing rates, lowest first.
func MixRates() []int { return slices.Clone(mixRates[:]) }

// ValidMixRate reports whether r is a mixing rate.
func ValidMixRate(r int) bool { return slices.Contains(mixRates[:], r) }

// CheckMixRate returns nil for a mixing rate, else an error wrapping ErrRate
// that names r: "12000 is not a mixing rate (want 8000, 16000, 24000 or 48000)".
func CheckMixRate(r int) error {
	if ValidMixRate(r) {
		return nil
	}
	return fmt.Errorf("%d is %w", r, ErrRate)
}
