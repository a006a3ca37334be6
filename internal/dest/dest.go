// Package dest is the destination contract of the replica (DESIGN §3): what
// the sync engine needs of a place to write rows, and the registry that picks
// an implementation by URL scheme (sqlite://, postgres://, mysql://, csv://,
// jsonl://, parquet://).
package dest

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Bookkeeping columns every table carries besides the object's own fields.
const (
	ColDeleted  = "_stripeline_deleted"   // boolean: deleted upstream (soft delete)
	ColSyncedAt = "_stripeline_synced_at" // integer: unix seconds of the write
	ColAccount  = "_stripeline_account"   // string: connected account id or ""
	ColVersion  = "_stripeline_version"   // integer: the version the row was written from (Row.Version; 0 unknown)
)

// Bookkeeping returns the bookkeeping columns, in the order destinations
// write them after a table's own.
func Bookkeeping() []Column {
	return []Column{
		{Name: ColDeleted, Type: catalog.TypeBoolean},
		{Name: ColSyncedAt, Type: catalog.TypeInteger},
		{Name: ColAccount, Type: catalog.TypeString},
		{Name: ColVersion, Type: catalog.TypeInteger},
	}
}

// StateTable and RunsTable are the names of the bookkeeping tables.
const (
	StateTable = "_stripeline_state"
	RunsTable  = "_stripeline_runs"
	// HistoryTable is the change log of the SQL destinations: what each
	// row (and each checkpoint) was before a run changed it (see
	// Batch.Run and internal/history).
	HistoryTable = "_stripeline_history"
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
	// Version is the version the row was written from (DESIGN §9): the
	// object's own update stamp, or its event's created × 1e6 plus a
	// tie-break within that second. It is stored in _stripeline_version
	// as given by every write; 0 means unknown, older than any version.
	Version int64
	// Raw is the object's JSON as Stripe sent it; file destinations write it.
	Raw json.RawMessage
}

// State is one stream's checkpoint, saved with the rows it covers.
type State struct {
	Pipeline string
	Stream   string
	Cursor   json.RawMessage
	// Run is the run the checkpoint belongs to, as Batch.Run: with it (or
	// a run in the context, WithRun) the cursor it replaces is kept in the
	// change log, so a rollback rewinds it.
	Run string
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
	// OnlyNewer makes the write conditional, for events that arrive out of
	// order (webhooks): a row is written only if its Version is greater
	// than the version stored for its id (a tie is not written), or if the
	// table has no row of that id. Every row then needs a Version above 0.
	// The state is saved either way.
	OnlyNewer bool
	// Run is the id of what the write belongs to, for the change log
	// (DESIGN §10): the sync run's id, or for a write outside a run (a
	// webhook delivery) an id of its own, such as "whk_" and the event's
	// id. A destination with a change log keeps, in the same transaction,
	// the previous values of every row the write really inserts, changes
	// or flags deleted, under this id. Empty: the run of the context
	// (WithRun) is used; with neither, nothing is logged.
	Run string
	// Events are recorded in EventsTable in the same transaction
	// (destinations implementing EventLog; others ignore them).
	Events []AppliedEvent
}

// HistoryMode says how much of a row's past the change log keeps.
type HistoryMode string

// History modes (the pipeline option history.mode).
const (
	// HistoryChanges (the default, also "") keeps the previous values of
	// the columns a write changed, pruned by the pipeline's retention.
	HistoryChanges HistoryMode = "changes"
	// HistoryFull keeps every version whole (valid_from, valid_to) and is
	// never pruned.
	HistoryFull HistoryMode = "full"
	// HistoryOff keeps nothing: such runs cannot be rolled back.
	HistoryOff HistoryMode = "off"
)

// WebhookRun starts the change-log run id of a webhook delivery's write:
// "whk_" and the event's id.
const WebhookRun = "whk_"

// RunContext is what a write needs to know of the run it belongs to.
type RunContext struct {
	ID       string
	Pipeline string
	History  HistoryMode
}

type runKey struct{}

// WithRun returns a context whose writes belong to run r: the engine sets
// it once for a whole run, so every Write, SaveState and sweep of the run
// is logged under its id without each call site naming it.
func WithRun(ctx context.Context, r RunContext) context.Context {
	return context.WithValue(ctx, runKey{}, r)
}

// RunOf returns the run of a context (WithRun); ok is false when there
// is none.
func RunOf(ctx context.Context) (RunContext, bool) {
	r, ok := ctx.Value(runKey{}).(RunContext)
	return r, ok
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
// of Write and SaveState calls → Close. Every method may be called from
// several goroutines at once (for different tables, or for the same one); a
// destination serialises what it must. After Close every method returns an
// error wrapping ErrClosed; Close itself may be called twice.
type Destination interface {
	// Migrate creates the table or adds the columns it lacks; it never
	// drops one. Idempotent: migrating the same table twice, or a table
	// with fewer columns than it has, changes nothing.
	Migrate(ctx context.Context, t Table) error
	// Write upserts the batch's rows by id together with its state, in one
	// transaction: either all of it is durable when Write returns nil, or
	// none of it is. Idempotent: the same batch twice leaves the same rows
	// (ids deduplicated within a batch by Batch.Merge). A table not
	// migrated yet is created. Errors name the table ("write customers:
	// …"); callers need not add it.
	Write(ctx context.Context, b *Batch) error
	// SaveState saves checkpoints that cover no rows (the events cursor,
	// the stamp floor, the other streams of a merged job), all of them in
	// one transaction. Idempotent: a state saved twice is saved once.
	// Unlike an empty Write it touches no table, and on file destinations
	// it never starts a new generation.
	SaveState(ctx context.Context, states ...State) error
	// LoadState returns the saved cursors of a pipeline by stream name
	// (empty, not an error, for a pipeline that never saved one). It sees
	// every Write and SaveState that returned before it was called.
	LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error)
	// SaveRun inserts or updates a run record by id (idempotent).
	SaveRun(ctx context.Context, r Run) error
	// Runs lists the most recent runs of a pipeline ("" for all), newest
	// first; limit 0 lists them all.
	Runs(ctx context.Context, pipeline string, limit int) ([]Run, error)
	// Close releases the connections or files. Every write already
	// returned is durable; nothing is left half-written.
	Close() error
}

// Querier is implemented by SQL destinations: `stripeline query`, lookups
// of rows by a field (ops.ReplicaFinder) and the engine's child lookups.
//
// Query runs one statement in a read-only transaction and returns its
// columns and rows, values normalised to nil, string, int64, float64 or
// bool (JSON as its text, times as RFC 3339 strings). Args bind the
// statement's placeholders, written ? in every dialect (PostgreSQL's are
// rewritten to $1, $2, …; a ? inside a quoted string, a quoted name or a
// comment is left alone); without args the statement runs as written, so
// PostgreSQL's ? operators still work there. No caller needs to quote a
// value into SQL by hand. A missing table is an error wrapping ErrNoTable.
// Safe for concurrent use; it never changes the replica.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (columns []string, rows [][]any, err error)
}

// Reader is implemented by destinations that can read their tables back:
// export, backups, the conformance suite and cross-destination
// comparisons. Values are normalised to nil, string, int64, float64, bool
// or json.RawMessage (json columns); rows come in no particular order,
// bookkeeping columns included. A table that does not exist is an error
// wrapping ErrNoTable. Safe for concurrent use, also beside writes; a read
// sees the rows of the writes that returned before it started.
type Reader interface {
	// Tables lists the replica's tables (not the bookkeeping ones), sorted.
	Tables(ctx context.Context) ([]string, error)
	// Rows streams every row of a table without holding the table in
	// memory. An error ends the sequence: it is the last pair yielded.
	// Breaking out of the loop early releases what the read holds.
	Rows(ctx context.Context, table string) iter.Seq2[map[string]any, error]
	// ReadRows is Rows collected into a slice (CollectRows), for tables
	// known to be small and for tests.
	ReadRows(ctx context.Context, table string) ([]map[string]any, error)
}

// CollectRows gathers a sequence of Reader.Rows into a slice.
func CollectRows(seq iter.Seq2[map[string]any, error]) ([]map[string]any, error) {
	var out []map[string]any
	for row, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

// FullRefresher is implemented by destinations that keep one generation of
// data per full refresh (the file destinations). The engine calls BeginFull
// before it rewrites a table from scratch; the next Write of that table then
// starts a new generation that replaces the earlier files once durable.
// BeginFull itself writes nothing and may be called again before that
// Write. Destinations that upsert by id need not implement it.
type FullRefresher interface {
	BeginFull(ctx context.Context, table string) error
}

// Sweeper is implemented by destinations that can flag the rows a full
// re-read did not see: objects deleted upstream without a deletion event
// (or whose events aged out) show only by their absence from a listing.
type Sweeper interface {
	// MarkDeletedBefore sets _stripeline_deleted on the live rows of table
	// that belong to account and were last written before the given time,
	// and returns how many it flagged; their other columns stay as they
	// are. Idempotent: a second sweep flags nothing. A table that does not
	// exist is an error wrapping ErrNoTable.
	MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error)
}
