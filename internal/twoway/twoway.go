// Package twoway is two-way sync (DESIGN §10): edits made in the replica
// (an UPDATE of a two-way field, a row inserted with a NULL id, a row
// marked for deletion) are written back to Stripe at the start of a run,
// under the pipeline's run lock, before the normal pull.
//
// Change detection needs nothing installed in the database: every write of
// the engine remembers the two-way fields' values in the row itself
// (engine.ColWritten), so a row whose field differs from its remembered
// value is a change the database made. Stripe's side of a conflict comes
// from the events since the last pull. Writes go through internal/ops
// (request-schema validation, idempotency keys, the client's pacing), and
// their answers are written into the replica at once, so the pull that
// follows does not take the run's own writes for changes.
package twoway

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/ops"
)

// Policy resolves a field changed on both sides since the last run.
type Policy string

// Conflict policies.
const (
	// StripeWins keeps Stripe's value; the database's is overwritten by
	// the pull and kept in the conflict record.
	StripeWins Policy = "stripe-wins"
	// DatabaseWins sends the database's value.
	DatabaseWins Policy = "database-wins"
	// NewestWins keeps the later change: Stripe's is dated by its event,
	// the database's by the row's _stripeline_edited_at when the user's
	// application sets it, else by the run that finds it.
	NewestWins Policy = "newest-wins"
)

// Policies lists the policies, for help texts.
var Policies = []Policy{StripeWins, DatabaseWins, NewestWins}

// Config is the two_way option of a pipeline: per stream the fields the
// database may change, and the conflict policy.
type Config struct {
	Streams   map[string][]string `json:"streams" yaml:"streams"`
	Conflicts Policy              `json:"conflicts,omitempty" yaml:"conflicts"`
}

// Enabled reports whether c names any stream.
func (c *Config) Enabled() bool { return c != nil && len(c.Streams) > 0 }

// Policy is the conflict policy, stripe-wins by default.
func (c *Config) Policy() Policy {
	if c.Conflicts == "" {
		return StripeWins
	}
	return c.Conflicts
}

// SettingError is a two_way setting Validate refused. Setting is the
// config key ("two_way", or "two_way.conflicts" for the policy); a face
// maps it to its own words.
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *SettingError) Unwrap() error { return e.Err }

// Setting returns the config key.
func (e *SettingError) Setting() string { return e.Key }

func settingErr(key, format string, args ...any) error {
	return &SettingError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Validate checks the option against the catalog and the spec: each
// stream must be a top-level stream with events and an update request, and
// each field a top-level field of the object that the update request
// (POST /v1/<stream>/{id}) accepts.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	if c.Conflicts != "" && !slices.Contains(Policies, c.Conflicts) {
		return settingErr("two_way.conflicts", "%q is not a policy: use %s", c.Conflicts, policyList())
	}
	names := make([]string, 0, len(c.Streams))
	for n := range c.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := validateStream(name, c.Streams[name]); err != nil {
			return err
		}
	}
	return nil
}

func policyList() string {
	s := make([]string, len(Policies))
	for i, p := range Policies {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func validateStream(name string, fields []string) error {
	s, err := ops.LookupStream(name)
	if err != nil {
		return settingErr("two_way", "%v", err)
	}
	if len(s.EventTypes) == 0 {
		return settingErr("two_way", "%s has no events, so Stripe's side of a change cannot be seen: two-way sync needs a stream with events", name)
	}
	body, err := ops.UpdateSchema(s)
	if err != nil {
		return settingErr("two_way", "%v", err)
	}
	if len(fields) == 0 {
		return settingErr("two_way", "%s: list the fields the database may change, e.g. %s: [%s]", name, name, strings.Join(Updatable(s)[:min(3, len(Updatable(s)))], ", "))
	}
	cols := map[string]bool{}
	for _, col := range s.Columns {
		cols[col.Name] = true
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f] {
			return settingErr("two_way", "%s lists %s twice", name, f)
		}
		seen[f] = true
		if _, ok := body.Properties[f]; !ok || !cols[f] || f == "id" {
			return settingErr("two_way", "%s.%s cannot be two-way: the update request (POST %s/{id}) does not take it as a field of the object; it takes %s", name, f, s.Path, strings.Join(Updatable(s), ", "))
		}
	}
	return nil
}

// Updatable lists the fields of a stream's objects that its update request
// accepts: the fields that can be two-way.
func Updatable(s catalog.Stream) []string {
	body, err := ops.UpdateSchema(s)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range s.Columns {
		if _, ok := body.Properties[c.Name]; ok && c.Name != "id" {
			out = append(out, c.Name)
		}
	}
	return out
}

// CanCreate reports whether new rows of the stream can create objects.
func CanCreate(s catalog.Stream) bool {
	_, err := ops.CreateSchema(s)
	return err == nil
}
