// Package pipeline is stripeline's service core (DESIGN §8): named
// pipelines kept as records in a control store (a SQLite file beside the
// replica, or PostgreSQL), their runs as River jobs (periodic jobs for
// schedules, unique jobs per pipeline, retries with backoff, rescue of jobs
// whose worker died), their states, run history and per-run logs, and their
// deletion. Every face (the CLI, the REST API, the web UI) calls a *Service;
// none holds logic of its own.
package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

// Pipeline is one named, scheduled replication of a Stripe account into a
// destination. The fields up to Concurrency are what a user sets; the rest
// the service keeps.
type Pipeline struct {
	// Name is unique, starts with a letter, holds letters, digits, _ and -,
	// and never changes: it names the engine's state and run history.
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	// Connection says how to reach Stripe.
	Connection Connection `json:"connection"`
	// Dest is the destination URL (sqlite://, postgres://, …). It may hold
	// a password: show it through RedactedDest.
	Dest string `json:"-"`
	// Streams selects streams by name; empty means the default catalog.
	Streams []string `json:"streams,omitempty"`
	// Fields selects columns per stream; a stream not present keeps all.
	Fields map[string][]string `json:"fields,omitempty"`
	// StartDate bounds the backfill (zero: everything).
	StartDate time.Time `json:"start_date,omitzero"`
	// LookbackDays and WindowDays are the engine's options of those names.
	LookbackDays int `json:"lookback_days,omitempty"`
	WindowDays   int `json:"window_days,omitempty"`
	// Schedule says when the pipeline runs by itself.
	Schedule Schedule `json:"schedule"`
	// MaxRPS and EndpointRPS pace requests (0: the client's defaults).
	MaxRPS      float64 `json:"max_rps,omitempty"`
	EndpointRPS float64 `json:"endpoint_rps,omitempty"`
	// Concurrency is the requests kept in flight (0: the engine's default).
	Concurrency int `json:"concurrency,omitempty"`
	// TwoWay pushes the database's edits to Stripe before each pull (twoway.go).
	TwoWay *twoway.Config `json:"two_way,omitempty"`
	// History is the change history the runs keep (history.go).
	History *history.Policy `json:"history,omitempty"`

	// Source is "config" for a pipeline declared in the config file, else "".
	Source  string    `json:"source,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Status is computed when the pipeline is read.
	Status Status `json:"status"`
}

// Connection is how a pipeline reaches Stripe. The API key is either a
// reference to an environment variable (KeyRef "env:NAME", read when a run
// starts) or stored encrypted in the control store (KeyRef "stored").
type Connection struct {
	// KeyRef is "env:NAME" or "stored".
	KeyRef string `json:"key_ref"`
	// APIKey is input only: the key to store encrypted. Reads never fill it.
	APIKey stripe.Secret `json:"-"`
	// KeyHint is the stored key redacted (sk_test_…abcd), for display.
	KeyHint string `json:"key_hint,omitempty"`
	// Account is a connected account (acct_…) or "" for the platform.
	Account string `json:"account,omitempty"`
	// Accounts, when set, syncs several accounts of a platform (accounts.go).
	Accounts Accounts `json:"accounts,omitzero"`
	// APIBase points at Stripe (default) or an emulator.
	APIBase string `json:"api_base,omitempty"`
	// Proxy is an HTTP(S) proxy URL.
	Proxy string `json:"proxy,omitempty"`
}

// KeyRefStored is the KeyRef of a key kept encrypted in the control store.
const KeyRefStored = "stored"

// RedactedDest is the destination URL with its password hidden.
func (p *Pipeline) RedactedDest() string { return dest.Redact(p.Dest) }

// Title is the display name, or the name when there is none.
func (p *Pipeline) Title() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

// State is where a pipeline stands.
type State string

// States (DESIGN §8).
const (
	// StatePending: created, never succeeded, not failing.
	StatePending State = "pending"
	// StateActive: the last run succeeded.
	StateActive State = "active"
	// StateRunning: a run is going on.
	StateRunning State = "running"
	// StatePaused: no run starts, by hand or after an auth/permission failure.
	StatePaused State = "paused"
	// StateFailing: the last run failed; Status.ErrorKind says how.
	StateFailing State = "failing"
)

// Status is a pipeline's computed state.
type Status struct {
	State State `json:"state"`
	// Paused is set while the schedule is paused; PausedReason says why
	// when the service paused it (an auth or permission failure).
	Paused       bool   `json:"paused"`
	PausedReason string `json:"paused_reason,omitempty"`
	// ErrorKind and Error describe the last run's failure.
	ErrorKind ErrorKind `json:"error_kind,omitempty"`
	Error     string    `json:"error,omitempty"`
	// LastRun is the newest run's id (0: none), LastSuccess when a run
	// last succeeded, LastRefresh when the last run finished.
	LastRun     int64     `json:"last_run,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// NextRun is when the schedule runs it next (zero: manual or paused).
	NextRun time.Time `json:"next_run,omitzero"`
	// Tables counts the replica tables the pipeline writes.
	Tables int `json:"tables"`
}

// FieldError is a pipeline setting that is wrong. Setting returns the
// setting's key as in stripeline.yaml (name, schedule, dest, …); the message
// says what is wrong and how to fix it.
type FieldError struct {
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %q %v", e.Field, e.Value, e.Err)
}

// Setting is the config key of the setting at fault.
func (e *FieldError) Setting() string { return e.Field }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, value, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Value: value, Err: fmt.Errorf(format, args...)}
}

// Sentinel errors of the service; the REST face maps them to status codes.
var (
	// ErrNotFound: no pipeline (or run) of that name (or id).
	ErrNotFound = errors.New("not found")
	// ErrExists: a pipeline of that name exists already.
	ErrExists = errors.New("already exists")
	// ErrPaused: the pipeline is paused, so it does not run.
	ErrPaused = errors.New("the pipeline is paused")
)

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

// ValidName checks a pipeline name.
func ValidName(name string) error {
	if name == "" {
		return fieldErr("name", "", "is required: a letter first, then letters, digits, _ or -, e.g. acme_prod")
	}
	if !nameRE.MatchString(name) {
		return fieldErr("name", name, "is not a pipeline name: start with a letter, then use only letters, digits, _ or - (no / or :), at most 63 characters, e.g. acme_prod")
	}
	return nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks every setting a user gives and returns the first problem
// as a *FieldError naming the setting and the fix.
func (p *Pipeline) Validate() error {
	if err := ValidName(p.Name); err != nil {
		return err
	}
	if len(p.DisplayName) > 200 {
		return fieldErr("display_name", "", "is longer than 200 characters")
	}
	if err := p.Connection.validate(); err != nil {
		return err
	}
	if p.Dest == "" {
		return fieldErr("dest", "", "is required: a destination URL such as sqlite://stripe.db or postgres://host/db")
	}
	if u, err := url.Parse(p.Dest); err != nil || u.Scheme == "" || !hasScheme(u.Scheme) {
		return fieldErr("dest", dest.Redact(p.Dest), "is not a destination URL: use one of %s", strings.Join(schemes(), ", "))
	}
	for _, s := range p.Streams {
		if _, ok := catalog.Lookup(s); !ok {
			return fieldErr("streams", s, "is not a stream (see the catalog: stripeline streams)")
		}
	}
	for s := range p.Fields {
		if _, ok := catalog.Lookup(s); !ok {
			return fieldErr("streams", s, "is not a stream (see the catalog: stripeline streams)")
		}
	}
	if p.LookbackDays < 0 {
		return fieldErr("lookback_days", fmt.Sprint(p.LookbackDays), "must be 0 or more")
	}
	if p.WindowDays < 0 {
		return fieldErr("window_days", fmt.Sprint(p.WindowDays), "must be 0 or more")
	}
	if p.MaxRPS < 0 {
		return fieldErr("max_rps", fmt.Sprint(p.MaxRPS), "must be positive (0 for the default)")
	}
	if p.EndpointRPS < 0 {
		return fieldErr("endpoint_rps", fmt.Sprint(p.EndpointRPS), "must be positive (0 for the default)")
	}
	if p.Concurrency < 0 {
		return fieldErr("concurrency", fmt.Sprint(p.Concurrency), "must be 1 or more (0 for the default)")
	}
	if !p.StartDate.IsZero() && p.StartDate.After(time.Now().AddDate(0, 0, 1)) {
		return fieldErr("start_date", p.StartDate.Format("2006-01-02"), "is in the future: use a past date, or none to read everything")
	}
	if err := p.validateTwoWay(); err != nil {
		return err
	}
	if err := p.validateHistory(); err != nil {
		return err
	}
	return p.Schedule.validate()
}

func (c *Connection) validate() error {
	switch {
	case strings.HasPrefix(c.KeyRef, "env:"):
		if name := strings.TrimPrefix(c.KeyRef, "env:"); !envNameRE.MatchString(name) {
			return fieldErr("api_key", c.KeyRef, "names no environment variable: use env:NAME, e.g. env:STRIPE_API_KEY_ACME")
		}
		if c.APIKey != "" {
			return fieldErr("api_key", "", "is both a reference (%s) and a key: give one", c.KeyRef)
		}
	case c.KeyRef == KeyRefStored:
		if c.APIKey != "" && !c.APIKey.Valid() {
			return fieldErr("api_key", "", "is not a Stripe API key: it must start with sk_live_, sk_test_, rk_live_ or rk_test_")
		}
	case c.KeyRef == "":
		return fieldErr("api_key", "", "is required: a reference env:NAME (the key is read from that variable at each run) or a key to store encrypted")
	default:
		return fieldErr("api_key", c.KeyRef, "is not a key reference: use env:NAME or store the key itself")
	}
	if c.Account != "" && !strings.HasPrefix(c.Account, "acct_") {
		return fieldErr("account", c.Account, "is not a connected account id: expected acct_…")
	}
	if err := c.Accounts.validate(c); err != nil {
		return err
	}
	if c.APIBase != "" {
		if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("api_base", c.APIBase, "is not an http(s) URL such as http://127.0.0.1:12111")
		}
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Host == "" {
			return fieldErr("proxy", dest.Redact(c.Proxy), "is not a URL such as http://proxy:3128")
		}
	}
	return nil
}

func hasScheme(s string) bool {
	for _, k := range dest.Schemes() {
		if k == s {
			return true
		}
	}
	return false
}

func schemes() []string {
	out := dest.Schemes()
	for i := range out {
		out[i] += "://"
	}
	return out
}

// MarshalJSON writes the pipeline for the faces: the destination with its
// password masked ("dest"), the key only as its reference and hint.
func (p Pipeline) MarshalJSON() ([]byte, error) {
	type plain Pipeline
	return json.Marshal(struct {
		plain
		Dest string `json:"dest"`
	}{plain(p), p.RedactedDest()})
}
