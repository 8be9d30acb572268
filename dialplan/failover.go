package dialplan

import (
	"errors"
	"fmt"
	"slices"

	"github.com/voxgate/voxgate/internal/config"
)

// validateTrunks checks a dial's user, trunk and trunks: exactly one of
// them, every trunk configured and listed once, in a context that may
// reach trunks.
func (d *DialAction) validateTrunks(c *Context, trunks map[string]bool) error {
	set := 0
	for _, b := range []bool{d.User != "", d.Trunk != "", len(d.Trunks) > 0} {
		if b {
			set++
		}
	}
	switch {
	case set == 0:
		return config.FieldErr("dial", errors.New("give user, trunk or trunks"))
	case d.Trunk != "" && len(d.Trunks) > 0:
		return config.FieldErr("dial", errors.New("give trunk or trunks, not both (trunks: [a, b] tries a, then b)"))
	case set > 1:
		return config.FieldErr("dial", errors.New("give user or trunk, not both"))
	}
	if d.Trunk != "" && !trunks[d.Trunk] {
		return config.Fieldf("dial.trunk", "%w %q", ErrUnknownTrunk, d.Trunk)
	}
	for i, t := range d.Trunks {
		f := fmt.Sprintf("dial.trunks[%d]", i)
		switch {
		case t == "":
			return config.Fieldf(f, "empty trunk name")
		case !trunks[t]:
			return config.Fieldf(f, "%w %q", ErrUnknownTrunk, t)
		case slices.Index(d.Trunks, t) < i:
			return config.Fieldf(f, "trunk %q is listed twice", t)
		}
	}
	if (d.Trunk != "" || len(d.Trunks) > 0) && !c.AllowTrunks {
		f := "dial.trunk"
		if len(d.Trunks) > 0 {
			f = "dial.trunks"
		}
		return config.FieldErr(f, ErrTollFraud)
	}
	if d.TryTimeout > 0 && d.Trunk == "" && len(d.Trunks) == 0 {
		return config.FieldErr("dial.try_timeout", errors.New("only a call through trunks has tries"))
	}
	return nil
}

// TrunkOrder returns the trunks to try, in order: Trunks, or Trunk alone
// (nil for a dial to a user).
func (d DialAction) TrunkOrder() []string {
	if len(d.Trunks) > 0 {
		return slices.Clone(d.Trunks)
	}
	if d.Trunk != "" {
		return []string{d.Trunk}
	}
	return nil
}
