package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
	"github.com/voxgate/voxgate/switchboard"
	"github.com/voxgate/voxgate/webclient"
)

// Config is the whole configuration file.
type Config struct {
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	SIP   sip.Config       `yaml:"sip"`
	Web   webclient.Config `yaml:"web"`
	Users []UserConfig     `yaml:"users"`
	// Dialplan is the dialplan file (default: the embedded configs/dialplan.yaml).
	Dialplan string `yaml:"dialplan"`
	// Rooms holds the defaults of conference rooms.
	Rooms RoomsConfig `yaml:"rooms"`
	// Ringback is what callers hear while a dial rings (README "Early
	// media and ringback").
	Ringback     switchboard.RingbackConfig `yaml:"ringback"`
	DrainTimeout time.Duration              `yaml:"drain_timeout"`
	// DataDir holds the store (voxgate.db: registrations, call history,
	// the webhook outbox); created if missing. Empty: nothing is kept.
	DataDir string `yaml:"data_dir"`
	// Store configures what the store keeps.
	Store StoreConfig `yaml:"store"`
	// Webhooks are the endpoints told of calls, rooms, registrations and
	// trunks (their outbox is in the store: they need data_dir).
	Webhooks []events.Endpoint `yaml:"webhooks"`
	// Cluster joins other nodes behind Kamailio, sharing state in Redis
	// (cluster.go).
	Cluster ClusterConfig `yaml:"cluster"`

	src *yaml.Node // the file's document, for the lines of errors found later
}

// RoomsConfig configures conference rooms.
type RoomsConfig struct {
	Rate int `yaml:"rate"`
	Max  int `yaml:"max"`
	// Tones: play the join and leave beeps (default true).
	Tones *bool `yaml:"tones"`
	// RecordDir: when set, every room's mix is recorded there, from its
	// first participant to its last (room-<name>-<UTC time>.wav).
	RecordDir string `yaml:"record_dir"`
	// PromptDir holds the WAV files the REST API may play into rooms.
	PromptDir string `yaml:"prompt_dir"`
	// OpusComplexity is the complexity of voxgate's Opus encoders, 1..10
	// (0: 5), for every call and room (a call is a room of two).
	OpusComplexity int `yaml:"opus_complexity"`
}

// StoreConfig configures the store in data_dir.
type StoreConfig struct {
	// Retention is how long ended calls, room history and delivered
	// webhooks are kept (default 30 days, 720h).
	Retention time.Duration `yaml:"retention"`
}

// UserConfig is one local account.
type UserConfig struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	HA1      string `yaml:"ha1"`
	// SRTP is the media encryption policy of the user's calls: off, offer
	// or require ("": sip.srtp).
	SRTP string `yaml:"srtp"`
}

// parseConfig decodes and validates a config file's bytes; name is used in
// errors, which are *config.Error naming the file, line and field.
func parseConfig(name string, data []byte) (*Config, error) {
	var cfg Config
	root, err := config.Decode(name, data, &cfg)
	if err != nil {
		return nil, err
	}
	cfg.src = root
	fail := func(field string, err error) error { return cfg.locate(name, field, err) }
	switch strings.ToLower(cfg.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		return nil, fail("log.level", fmt.Errorf("unknown level %q (want debug, info, warn or error)", cfg.Log.Level))
	}
	switch strings.ToLower(cfg.Log.Format) {
	case "", "text", "json":
	default:
		return nil, fail("log.format", fmt.Errorf("unknown format %q (want text or json)", cfg.Log.Format))
	}
	if err := cfg.SIP.Validate(); err != nil {
		return nil, fail("sip", err)
	}
	if err := cfg.Web.Validate(); err != nil {
		return nil, fail("web", err)
	}
	seen := map[string]bool{}
	for i, u := range cfg.Users {
		f := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Name == "" || strings.ContainsAny(u.Name, " @:;<>\""):
			return nil, fail(f+".name", fmt.Errorf("%q is not a valid user name", u.Name))
		case seen[u.Name]:
			return nil, fail(f+".name", fmt.Errorf("duplicate user %q", u.Name))
		case u.Password == "" && u.HA1 == "":
			return nil, fail(f+".password", errors.New("a password or an ha1 is required"))
		case u.HA1 != "" && len(u.HA1) != 32 && len(u.HA1) != 64:
			return nil, fail(f+".ha1", errors.New("must be 32 (MD5) or 64 (SHA-256) hex digits"))
		}
		if _, err := sip.ParseSRTPPolicy(u.SRTP); err != nil {
			return nil, fail(f+".srtp", err)
		}
		seen[u.Name] = true
	}
	if cfg.Rooms.Rate == 0 {
		cfg.Rooms.Rate = 16000
	}
	if err := audio.CheckMixRate(cfg.Rooms.Rate); err != nil {
		return nil, fail("rooms.rate", err)
	}
	if d := cfg.Rooms.RecordDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return nil, fail("rooms.record_dir", fmt.Errorf("%q is not a directory", d))
		}
	}
	if d := cfg.Rooms.PromptDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return nil, fail("rooms.prompt_dir", fmt.Errorf("%q is not a directory", d))
		}
	}
	if cfg.Rooms.Max < 0 {
		return nil, fail("rooms.max", errors.New("must not be negative"))
	}
	if cfg.Rooms.OpusComplexity == 0 {
		cfg.Rooms.OpusComplexity = opus.DefaultComplexity
	}
	if c := cfg.Rooms.OpusComplexity; c < 1 || c > 10 {
		return nil, fail("rooms.opus_complexity", fmt.Errorf("%d is out of range (want 1..10)", c))
	}
	if err := cfg.Ringback.Validate(); err != nil {
		return nil, fail("ringback", err)
	}
	if err := events.Validate(cfg.Webhooks); err != nil {
		return nil, fail("", err)
	}
	if len(cfg.Webhooks) > 0 && cfg.DataDir == "" {
		return nil, fail("webhooks", errors.New("webhooks need data_dir (their outbox is kept there, so a restart loses no event)"))
	}
	if cfg.Store.Retention < 0 {
		return nil, fail("store.retention", errors.New("must not be negative"))
	}
	if cfg.Store.Retention == 0 {
		cfg.Store.Retention = store.DefaultRetention
	}
	if field, err := cfg.Cluster.validate(); err != nil {
		return nil, fail("cluster."+field, err)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	return &cfg, nil
}

// locate places err, a mistake in field (a section, whose Validate named a
// field below it, or a field itself), in the config file name: the one place
// config errors get their file and line.
func (c *Config) locate(name, field string, err error) error {
	return config.Locate(name, c.src, config.Within(field, err))
}

// loadDialplan reads the dialplan the config names (relative paths from the
// config file's directory), or the embedded default.
func loadDialplan(configPath string, cfg *Config) (*dialplan.Plan, error) {
	var trunks []string
	for _, t := range cfg.SIP.Trunks {
		trunks = append(trunks, t.Name)
	}
	if cfg.Dialplan == "" {
		return dialplan.Parse(configs.DialplanName, configs.Dialplan, dialplan.Options{Trunks: trunks})
	}
	path := dialplanPath(configPath, cfg)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dialplan: %w", err)
	}
	return dialplan.Parse(path, data, dialplan.Options{Trunks: trunks})
}

// dialplanPath is the file of the dialplan the config names: relative paths
// are taken from the config file's directory.
func dialplanPath(configPath string, cfg *Config) string {
	path := cfg.Dialplan
	if !filepath.IsAbs(path) && configPath != "" {
		path = filepath.Join(filepath.Dir(configPath), path)
	}
	return path
}
