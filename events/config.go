package events

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/voxgate/voxgate/internal/config"
)

// Endpoint is one webhook receiver (an entry of the config's `webhooks`).
type Endpoint struct {
	// Name identifies the endpoint in logs and metrics.
	Name string `yaml:"name"`
	// URL receives a POST per event (http or https).
	URL string `yaml:"url"`
	// Secret signs every delivery (at least 16 characters).
	Secret string `yaml:"secret"`
	// Events are the event types it wants; patterns like "call.*" match a
	// family, "*" all (default: all).
	Events []string `yaml:"events"`
	// Timeout is one attempt's limit (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAge: an event not delivered this long after it happened is given
	// up and logged (default 24h).
	MaxAge time.Duration `yaml:"max_age"`
}

// Validate fills the defaults and checks every endpoint; an error is a
// *config.Error naming the field as webhooks[i].field.
func Validate(eps []Endpoint) error {
	seen := map[string]bool{}
	for i := range eps {
		e := &eps[i]
		field := func(f string) string { return fmt.Sprintf("webhooks[%d].%s", i, f) }
		if e.Name == "" {
			return config.Fieldf(field("name"), "required")
		}
		if seen[e.Name] {
			return config.Fieldf(field("name"), "duplicate endpoint %q", e.Name)
		}
		seen[e.Name] = true
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.Fieldf(field("url"), "%q is not an http:// or https:// URL", e.URL)
		}
		if len(e.Secret) < 16 {
			return config.Fieldf(field("secret"), "must be at least 16 characters (it signs every delivery)")
		}
		for j, p := range e.Events {
			if !validPattern(p) {
				return config.Fieldf(fmt.Sprintf("%s[%d]", field("events"), j), "unknown event %q (want one of %s, a family like call.*, or *)", p, strings.Join(Types, ", "))
			}
		}
		if e.Timeout < 0 {
			return config.Fieldf(field("timeout"), "must not be negative")
		}
		if e.MaxAge < 0 {
			return config.Fieldf(field("max_age"), "must not be negative")
		}
		if e.Timeout == 0 {
			e.Timeout = 5 * time.Second
		}
		if e.MaxAge == 0 {
			e.MaxAge = 24 * time.Hour
		}
	}
	return nil
}

// validPattern: a type, a family pattern matching at least one type, or *.
func validPattern(p string) bool {
	if p == "*" || slices.Contains(Types, p) {
		return true
	}
	if !strings.HasSuffix(p, ".*") {
		return false
	}
	for _, t := range Types {
		if m, _ := path.Match(p, t); m {
			return true
		}
	}
	return false
}

// Wants tells whether the endpoint asked for events of type typ.
func (e *Endpoint) Wants(typ string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, p := range e.Events {
		if p == "*" || p == typ {
			return true
		}
		if m, _ := path.Match(p, typ); m && strings.HasSuffix(p, ".*") {
			return true
		}
	}
	return false
}
