// Package config loads stripeline's configuration file: defaults, a strict
// YAML decode (unknown keys are errors), ${ENV} expansion, then validation
// that names the field and the fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// APIKey is a Stripe secret or restricted key; STRIPE_API_KEY overrides it.
	APIKey string `yaml:"api_key"`
	// APIBase points at Stripe or an emulator; STRIPE_API_BASE and --api-base override it.
	APIBase string `yaml:"api_base"`
	// Account is a connected account (acct_…) to act on.
	Account string `yaml:"account"`
	// Proxy is an HTTP(S) proxy URL for requests to Stripe.
	Proxy string `yaml:"proxy"`
	// MaxRPS and EndpointRPS pace requests (0: defaults by key mode).
	MaxRPS      float64 `yaml:"max_rps"`
	EndpointRPS float64 `yaml:"endpoint_rps"`
	// Dest is the default destination URL for sync, query and export.
	Dest string `yaml:"dest"`
	// Streams selects streams and, per stream, the fields to keep.
	// An empty map means every stream and every field.
	Streams map[string]StreamConfig `yaml:"streams"`
	// Pipelines are named sync jobs run by `stripeline serve`.
	Pipelines []Pipeline `yaml:"pipelines"`
	// Server configures `stripeline serve`.
	Server Server `yaml:"server"`
	// TwoWay pushes the database's edits to Stripe before each sync's pull
	// (sync's --two-way and --conflicts override it).
	TwoWay *TwoWay `yaml:"two_way"`
}

// TwoWay is the two_way option (of the file, or of one pipeline): per
// stream the fields the database may change, and the conflict policy
// (stripe-wins, database-wins or newest-wins). internal/twoway validates
// it against the spec.
type TwoWay struct {
	Streams   map[string][]string `yaml:"streams"`
	Conflicts string              `yaml:"conflicts"`
}

// StreamConfig selects fields of one stream. No fields means all of them.
type StreamConfig struct {
	Fields []string `yaml:"fields"`
}

// Pipeline is a named, scheduled sync.
// `stripeline serve` applies the file's pipelines to the control store at
// start (the file wins) and reports where the store had drifted from it.
type Pipeline struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	Description string `yaml:"description"`
	Dest        string `yaml:"dest"`
	// APIKey is a reference env:NAME (read at each run) or, through
	// ${ENV} expansion, a key to store encrypted; default env:STRIPE_API_KEY.
	APIKey  string   `yaml:"api_key"`
	APIBase string   `yaml:"api_base"`
	Account string   `yaml:"account"`
	Streams []string `yaml:"streams"`
	// Schedule is "every 15m", "cron 0 * * * *", "manual", or a bare
	// duration ("15m") between runs.
	Schedule     string  `yaml:"schedule"`
	StartDate    string  `yaml:"start_date"`
	LookbackDays int     `yaml:"lookback_days"`
	WindowDays   int     `yaml:"window_days"`
	MaxRPS       float64 `yaml:"max_rps"`
	EndpointRPS  float64 `yaml:"endpoint_rps"`
	TwoWay       *TwoWay `yaml:"two_way"`
	// Accounts and PlatformRPS make the pipeline a fleet (accounts.go).
	Accounts    AccountList `yaml:"accounts"`
	PlatformRPS float64     `yaml:"platform_rps"`
	// History is the change history the pipeline's runs keep.
	History *History `yaml:"history"`
}

// History is a pipeline's history option: mode changes (default), full
// or off, and the retention of mode changes.
type History struct {
	Mode     string `yaml:"mode"`
	KeepRuns int    `yaml:"keep_runs"`
	KeepDays int    `yaml:"keep_days"`
}

// Server configures the service.
type Server struct {
	Addr          string `yaml:"addr"`
	Token         string `yaml:"token"`
	WebhookSecret string `yaml:"webhook_secret"`
}

// ConfigError says which field is wrong and how to fix it.
type ConfigError struct {
	Field string
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config field %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("config field %s = %q: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{Server: Server{Addr: "127.0.0.1:8080"}}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads path into a Default config. A missing file is not an error when
// mustExist is false.
func Load(path string, mustExist bool) (*Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := Parse(data, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly into c after expanding ${ENV} references, then validates.
func Parse(data []byte, c *Config) error { return ParseEnv(data, c, os.Getenv) }

// ParseEnv is Parse with ${ENV} references read through getenv instead of
// the process's environment (the CLI passes its invocation's).
func ParseEnv(data []byte, c *Config, getenv func(string) string) error {
	expanded := envRef.ReplaceAllFunc(data, func(m []byte) []byte {
		return []byte(getenv(string(envRef.FindSubmatch(m)[1])))
	})
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s (unknown keys are errors; see docs/OPERATIONS.md for the fields)", decodeProblem(err))
	}
	return c.Validate()
}

// Validate checks every field and returns the first problem as a *ConfigError.
func (c *Config) Validate() error {
	if c.APIKey != "" && !ValidKeyPrefix(c.APIKey) {
		return &ConfigError{Field: "api_key", Err: errors.New("must start with sk_live_, sk_test_, rk_live_ or rk_test_")}
	}
	if c.APIBase != "" {
		if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ConfigError{Field: "api_base", Value: c.APIBase, Err: errors.New("must be an http(s) URL such as http://127.0.0.1:12111")}
		}
	}
	if c.Account != "" && !strings.HasPrefix(c.Account, "acct_") {
		return &ConfigError{Field: "account", Value: c.Account, Err: errors.New("must be a connected account id starting with acct_")}
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Host == "" {
			return &ConfigError{Field: "proxy", Value: c.Proxy, Err: errors.New("must be a URL such as http://proxy:3128")}
		}
	}
	if c.MaxRPS < 0 {
		return &ConfigError{Field: "max_rps", Value: fmt.Sprint(c.MaxRPS), Err: errors.New("must be positive")}
	}
	if c.EndpointRPS < 0 {
		return &ConfigError{Field: "endpoint_rps", Value: fmt.Sprint(c.EndpointRPS), Err: errors.New("must be positive")}
	}
	seen := map[string]bool{}
	for i, p := range c.Pipelines {
		field := fmt.Sprintf("pipelines[%d]", i)
		if p.Name == "" {
			return &ConfigError{Field: field + ".name", Err: errors.New("is required")}
		}
		if seen[p.Name] {
			return &ConfigError{Field: field + ".name", Value: p.Name, Err: errors.New("is used twice; pipeline names must be unique")}
		}
		seen[p.Name] = true
		if p.Dest == "" {
			return &ConfigError{Field: field + ".dest", Err: errors.New("is required, e.g. sqlite://stripe.db")}
		}
	}
	return nil
}

// ValidKeyPrefix reports whether key looks like a Stripe API key.
func ValidKeyPrefix(key string) bool {
	for _, p := range []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"} {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// notFound is how yaml words an unknown key: "line 3: field max_rsp not
// found in type config.Config".
var notFound = regexp.MustCompile(`field (\S+) not found in type \S+`)

// decodeProblem words a decoding error on one line: yaml lists each
// unknown key or mistyped value on a line of its own.
func decodeProblem(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	problems := make([]string, len(te.Errors))
	for i, p := range te.Errors {
		problems[i] = notFound.ReplaceAllString(p, "unknown key $1")
	}
	return strings.Join(problems, "; ")
}
