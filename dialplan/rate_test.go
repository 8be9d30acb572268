package dialplan

import (
	"slices"
	"testing"

	"github.com/voxgate/voxgate/audio"
)

// dialplan keeps its own copy of the mixing rates so that it imports no
// media code; this test, which may, keeps the copy honest.
func TestMixRatesAreAudios(t *testing.T) {
	if !slices.Equal(mixRates, audio.MixRates()) {
		t.Fatalf("dialplan's mixing rates %v, audio's %v", mixRates, audio.MixRates())
	}
}
