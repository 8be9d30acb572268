package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/sip"
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
	Rooms        RoomsConfig   `yaml:"rooms"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
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
}

// UserConfig is one local account.
type UserConfig struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	HA1      string `yaml:"ha1"`
}

// ConfigError names the file, line and field of a configuration mistake.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// parseConfig decodes and validates a config file's bytes; name is used in errors.
func parseConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		err := yamlError(name, err)
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Field == "" && ce.Line > 0 {
			ce.Field = fieldAtLine(&root, ce.Line, "")
		}
		return nil, err
	}
	fail := func(field string, err error) error {
		return &ConfigError{File: name, Line: lineOf(&root, field), Field: field, Err: err}
	}
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
		var fe *sip.FieldError
		if errors.As(err, &fe) {
			return nil, fail("sip."+fe.Field, fe.Err)
		}
		return nil, fail("sip", err)
	}
	if err := cfg.Web.Validate(); err != nil {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok {
			field, msg = "", err.Error()
		}
		field = strings.SplitN(field, "/", 2)[0]
		return nil, fail("web."+field, errors.New(msg))
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
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	return &cfg, nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into a ConfigError.
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: name, Line: line, Err: errors.New(m[2])}
	}
	return &ConfigError{File: name, Err: errors.New(msg)}
}

// lineOf finds the line of a field path like "sip.trunks[0].registrar" in
// the document; it returns the line of the deepest part that exists.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		next := mapValue(n, key)
		if next == nil {
			return line
		}
		n, line = next.val, next.key.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

type kv struct{ key, val *yaml.Node }

func mapValue(n *yaml.Node, key string) *kv {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return &kv{n.Content[i], n.Content[i+1]}
		}
	}
	return nil
}

// fieldAtLine returns the path of the mapping key on line (for errors that
// yaml.v3 reports by line only).
func fieldAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if f := fieldAtLine(c, line, prefix); f != "" {
				return f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := n.Content[i].Value
			if prefix != "" {
				path = prefix + "." + path
			}
			if n.Content[i].Line == line {
				return path
			}
			if f := fieldAtLine(n.Content[i+1], line, path); f != "" {
				return f
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f := fieldAtLine(c, line, fmt.Sprintf("%s[%d]", prefix, i)); f != "" {
				return f
			}
		}
	}
	return ""
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
	path := cfg.Dialplan
	if !filepath.IsAbs(path) && configPath != "" {
		path = filepath.Join(filepath.Dir(configPath), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dialplan: %w", err)
	}
	return dialplan.Parse(path, data, dialplan.Options{Trunks: trunks})
}
