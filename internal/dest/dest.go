// Package dest is the destination contract of the replica (DESIGN §3): what
// the sync engine needs of a place to write rows, and the registry that picks
// an implementation by URL scheme (sqlite://, postgres://, mysql://, csv://,
// jsonl://, parquet://).
package dest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Bookkeeping columns every table carries besides the object's own fields.
const (
	ColDeleted  = "_stripeline_deleted"   // boolean: deleted upstream (soft delete)
	ColSyncedAt = "_stripeline_synced_at" // integer: unix seconds of the write
	ColAccount  = "_stripeline_account"   // string: connected account id or ""
)

// StateTable and RunsTable are the names of the bookkeeping tables.
const (
	StateTable = "_stripeline_state"
	RunsTable  = "_stripeline_runs"
)

// Column is one column of a replica table.
type Column struct {
	Name string
	Type catalog.Type
}

// Table is the shape of one stream's table: "id" first, then the object's
// fields. The bookkeeping columns are implied and added by the destination.
type Table struct {
	Name    string
	Columns []Column
}

// Row is one object to upsert by id.
type Row struct {
	ID string
	// Values align with the batch's Table.Columns. Each is nil, string,
	// int64, float64, bool or json.RawMessage (objects, arrays, unions).
	// A nil Values slice with Deleted set marks an existing row deleted and
	// leaves its other columns as they are (a row that does not exist yet is
	// created holding only the id).
	Values  []any
	Deleted bool
	// Raw is the object's JSON as Stripe sent it; file destinations write it.
	Raw json.RawMessage
}

// State is one stream's checkpoint, saved with the rows it covers.
type State struct {
	Pipeline string
	Stream   string
	Cursor   json.RawMessage
}

// Batch is one atomic unit: upserts into one table together with the
// checkpoint they advance. Either all of it is durable or none of it.
type Batch struct {
	Table   Table
	Rows    []Row
	Account string
	// State, when non-nil, is written in the same transaction as Rows.
	State *State
	// SyncedAt is the time stamped on every row of the batch.
	SyncedAt time.Time
}

// Run is one row of run history.
type Run struct {
	ID       string
	Pipeline string
	Started  time.Time
	Finished time.Time // zero while running
	Status   string    // running, succeeded, failed
	// Streams holds per-stream counts and notes, as JSON.
	Streams json.RawMessage
	Error   string
}

// Destination is where a replica lives.
//
// Lifecycle: Open (from the registry) → Migrate for every table → any number
// of Write calls → Close. Migrate and Write may be called from several
// goroutines at once for different tables; a destination serialises what it
// must. Write is idempotent: the same batch twice leaves the same rows
// (upsert by id, ids deduplicated within a batch, the last one winning).
// Migrate creates the table or adds the columns it lacks; it never drops one.
type Destination interface {
	Migrate(ctx context.Context, t Table) error
	Write(ctx context.Context, b *Batch) error
	// LoadState returns the saved cursors of a pipeline by stream name.
	LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error)
	// SaveRun inserts or updates a run record by id.
	SaveRun(ctx context.Context, r Run) error
	// Runs lists the most recent runs of a pipeline ("" for all), newest first.
	Runs(ctx context.Context, pipeline string, limit int) ([]Run, error)
	Close() error
}

// Querier is implemented by SQL destinations: `stripeline query`.
type Querier interface {
	Query(ctx context.Context, sql string) (columns []string, rows [][]any, err error)
}

// Opener opens a destination from its URL.
type Opener func(ctx context.Context, u *url.URL) (Destination, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a destination available under a URL scheme. It panics if
// the scheme is registered twice; call it from an init function.
func Register(scheme string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("dest: scheme registered twice: " + scheme)
	}
	openers[scheme] = o
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens the destination named by rawURL, e.g. "sqlite://stripeline.db".
func Open(ctx context.Context, rawURL string) (Destination, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("--dest %q is not a destination URL: expected one of %s, e.g. sqlite://stripeline.db", Redact(rawURL), strings.Join(withSuffix(Schemes()), ", "))
	}
	mu.RLock()
	o, ok := openers[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("--dest scheme %q is not supported: expected one of %s", u.Scheme, strings.Join(withSuffix(Schemes()), ", "))
	}
	return o(ctx, u)
}

func withSuffix(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = v + "://"
	}
	return out
}

// Redact hides the password of a DSN so it can appear in errors and logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Reader is implemented by destinations that can read a table back: the
// conformance suite, `stripeline export` and cross-destination comparisons
// use it. ReadRows returns every row of the table (bookkeeping columns
// included) with values normalised to nil, string, int64, float64, bool or
// json.RawMessage (json columns), in no particular order. A table that does
// not exist is an error.
type Reader interface {
	ReadRows(ctx context.Context, table string) ([]map[string]any, error)
}

// FullRefresher is implemented by destinations that keep one generation of
// data per full refresh (the file destinations). The engine calls BeginFull
// before it rewrites a table from scratch; the next Write of that table then
// starts a new generation that replaces the earlier files once durable.
// Destinations that upsert by id need not implement it.
type FullRefresher interface {
	BeginFull(ctx context.Context, table string) error
}

// Convert checks a Row value against its column's type and returns it in
// the column's canonical Go type: string, int64, float64, bool or
// json.RawMessage, or nil. SQL destinations use it so a value of the wrong
// shape fails the whole batch before anything is sent.
func Convert(t catalog.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case catalog.TypeInteger:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				return n, nil
			}
		}
	case catalog.TypeNumber:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("number %v cannot be stored", x)
			}
			return x, nil
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		case json.Number:
			if f, err := x.Float64(); err == nil {
				return f, nil
			}
		}
	case catalog.TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case catalog.TypeJSON:
		switch x := v.(type) {
		case json.RawMessage:
			if x == nil {
				return nil, nil
			}
			if !json.Valid(x) {
				return nil, fmt.Errorf("invalid JSON %.40q", x)
			}
			return x, nil
		case []byte:
			if !json.Valid(x) {
				return nil, fmt.Errorf("invalid JSON %.40q", x)
			}
			return json.RawMessage(x), nil
		case string, int64, int, float64, bool:
			b, err := json.Marshal(x)
			return json.RawMessage(b), err
		}
	default: // string
		switch x := v.(type) {
		case string:
			return x, nil
		case json.RawMessage:
			return string(x), nil
		case int64, int, float64, bool:
			return fmt.Sprint(x), nil
		}
	}
	return nil, fmt.Errorf("unsupported value %T for a %s column", v, t)
}

// Merge folds a batch's rows into one per id, the last winning; a deletion
// without values after a full row keeps the values and sets the flag. It
// returns the full rows (values converted to the columns' types) and the
// ids of deletions without values.
func (b *Batch) Merge() (full [][]any, deleted []bool, stubs []string, err error) {
	idCol := -1
	for i, c := range b.Table.Columns {
		if c.Name == "id" {
			idCol = i
		}
	}
	if idCol < 0 {
		return nil, nil, nil, errors.New("the table has no id column")
	}
	fullAt := map[string]int{}
	stubAt := map[string]bool{}
	n := len(b.Table.Columns)
	for ri := range b.Rows {
		r := &b.Rows[ri]
		if r.Values == nil {
			if !r.Deleted {
				return nil, nil, nil, fmt.Errorf("row %s has no values", r.ID)
			}
			if r.ID == "" {
				return nil, nil, nil, errors.New("deleted row without an id")
			}
			if i, ok := fullAt[r.ID]; ok {
				deleted[i] = true
			} else if !stubAt[r.ID] {
				stubAt[r.ID] = true
				stubs = append(stubs, r.ID)
			}
			continue
		}
		if len(r.Values) != n {
			return nil, nil, nil, fmt.Errorf("row %s has %d values for %d columns", r.ID, len(r.Values), n)
		}
		vals := make([]any, n)
		for i, v := range r.Values {
			if vals[i], err = Convert(b.Table.Columns[i].Type, v); err != nil {
				return nil, nil, nil, fmt.Errorf("row %s column %s: %w", r.ID, b.Table.Columns[i].Name, err)
			}
		}
		id := r.ID
		if id == "" {
			id, _ = vals[idCol].(string)
		}
		vals[idCol] = id
		if i, ok := fullAt[id]; ok {
			full[i], deleted[i] = vals, r.Deleted
			continue
		}
		fullAt[id] = len(full)
		full = append(full, vals)
		deleted = append(deleted, r.Deleted)
	}
	// A full row after a deletion stub of the same id supersedes the stub.
	kept := stubs[:0]
	for _, id := range stubs {
		if _, ok := fullAt[id]; !ok {
			kept = append(kept, id)
		}
	}
	return full, deleted, kept, nil
}

// Sweeper is implemented by destinations that can flag the rows a full
// re-read did not see: objects deleted upstream without a deletion event
// (or whose events aged out) show only by their absence from a listing.
type Sweeper interface {
	// MarkDeletedBefore sets _stripeline_deleted on the live rows of table
	// that belong to account and were last written before the given time,
	// and returns how many it flagged.
	MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error)
}
