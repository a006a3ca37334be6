// Package files is the file destinations: csv://DIR, jsonl://DIR and
// parquet://DIR. A stream's first write (and the first write after
// BeginFull) makes its base file, customers.csv; later writes append part
// files, customers.part-000002.csv. Every file appears atomically (temp file
// in the same directory, fsync, rename, fsync of the directory), and the
// state file _stripeline_state.json, which also records each table's
// generation and columns, is rewritten after the data files it covers.
// Reading merges the base file and its parts, later winning by id.
package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Formats, also the URL schemes and file extensions.
const (
	CSV     = "csv"
	JSONL   = "jsonl"
	Parquet = "parquet"
)

func init() {
	for _, f := range []string{CSV, JSONL, Parquet} {
		dest.Register(f, func(ctx context.Context, u *url.URL) (dest.Destination, error) {
			dir := u.Host + u.Path
			if u.Opaque != "" {
				dir = u.Opaque
			}
			return Open(ctx, f, dir)
		})
	}
}

var (
	_ dest.Destination   = (*Destination)(nil)
	_ dest.Reader        = (*Destination)(nil)
	_ dest.FullRefresher = (*Destination)(nil)
)

// StateFile and RunsFile are the bookkeeping files of a directory.
const (
	StateFile = dest.StateTable + ".json"
	RunsFile  = dest.RunsTable + ".jsonl"
)

// tableInfo is what the state file records of one table.
type tableInfo struct {
	// Generation is the part number of the current base file: parts
	// numbered at or below it belong to earlier generations.
	Generation int `json:"generation"`
	// Next is the number of the next file.
	Next int `json:"next"`
	// Columns are every column ever written, with their types.
	Columns []dest.Column `json:"columns"`
}

// stateFile is the content of _stripeline_state.json.
type stateFile struct {
	State  map[string]map[string]json.RawMessage `json:"state"` // pipeline → stream → cursor
	Tables map[string]*tableInfo                 `json:"tables"`
}

// Destination writes one directory of files.
type Destination struct {
	format string
	dir    string

	mu      sync.Mutex // guards st, full, and the files of the directory
	st      stateFile
	full    map[string]bool // tables whose next write starts a generation
	closed  bool
	runsMu  sync.Mutex
	fsyncOn bool
}

// Open opens (creating if needed) the directory and loads its state file.
// A directory that cannot be written is one clear error.
func Open(ctx context.Context, format, dir string) (*Destination, error) {
	if dir == "" {
		return nil, dest.BadURL(fmt.Errorf("%s destination: no directory: use %s://DIR, e.g. %s://./export", format, format, format))
	}
	fail := func(err error) error {
		return fmt.Errorf("%s destination %s://%s: %w (choose a directory you can write to, or fix its permissions)", format, format, dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fail(err)
	}
	probe, err := os.CreateTemp(dir, ".stripeline-probe-*")
	if err != nil {
		return nil, fail(errors.New("the directory is not writable"))
	}
	probe.Close()
	os.Remove(probe.Name())
	st, err := readState(dir)
	if err != nil {
		return nil, fail(err)
	}
	return &Destination{format: format, dir: dir, full: map[string]bool{}, fsyncOn: true, st: st}, nil
}

// Close marks the destination closed; every file is already durable.
func (d *Destination) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

// Migrate records the table's columns; files get their shape when written.
func (d *Destination) Migrate(ctx context.Context, t dest.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("files destination: %w", dest.ErrClosed)
	}
	ti := d.st.Tables[t.Name]
	if ti == nil {
		ti = &tableInfo{}
		d.st.Tables[t.Name] = ti
	}
	addColumns(ti, t.Columns)
	return nil
}

func addColumns(ti *tableInfo, cols []dest.Column) {
	have := map[string]bool{}
	for _, c := range ti.Columns {
		have[c.Name] = true
	}
	for _, c := range cols {
		if !have[c.Name] {
			have[c.Name] = true
			ti.Columns = append(ti.Columns, c)
		}
	}
}

// BeginFull makes the table's next write start a new generation: a new
// base file, after which the earlier files are removed.
func (d *Destination) BeginFull(ctx context.Context, table string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full[table] = true
	return nil
}

// record is one row to write: the winning row of its id.
type record struct {
	row     *dest.Row
	deleted bool
	stub    bool
}

// merge keeps the last row of each id; a deletion without values after a
// full row flags that row.
func merge(b *dest.Batch) []record {
	at := map[string]int{}
	var out []record
	for i := range b.Rows {
		r := &b.Rows[i]
		j, seen := at[r.ID]
		switch {
		case r.Values == nil && seen:
			out[j].deleted = true
		case r.Values == nil:
			at[r.ID] = len(out)
			out = append(out, record{row: r, deleted: true, stub: true})
		case seen:
			out[j] = record{row: r, deleted: r.Deleted}
		default:
			at[r.ID] = len(out)
			out = append(out, record{row: r, deleted: r.Deleted})
		}
	}
	return out
}

// Write writes the batch as one new file, then the state file.
func (d *Destination) Write(ctx context.Context, b *dest.Batch) error {
	if err := d.write(ctx, b); err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	return nil
}

func (d *Destination) write(ctx context.Context, b *dest.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.ContainsAny(b.Table.Name, `/\`) || b.Table.Name == "" || strings.HasPrefix(b.Table.Name, ".") {
		return fmt.Errorf("table name %q cannot be a file name", b.Table.Name)
	}
	// Validate every value first: a bad one fails the batch before any
	// file exists.
	if _, _, _, err := b.Merge(); err != nil {
		return err
	}
	recs := merge(b)
	synced := b.SyncedAt.Unix()
	if b.SyncedAt.IsZero() {
		synced = time.Now().Unix()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("files destination: %w", dest.ErrClosed)
	}
	next := cloneState(d.st)
	ti := next.Tables[b.Table.Name]
	if ti == nil {
		ti = &tableInfo{}
		next.Tables[b.Table.Name] = ti
	}
	addColumns(ti, b.Table.Columns)
	var obsolete []string
	// After BeginFull, the first rows start the new generation; so does a
	// checkpoint of the table's own stream without rows (a full re-read
	// that found nothing leaves an empty table, not the old one). Other
	// checkpoints (the events cursor) leave the pending refresh alone.
	st := b.State
	startGen := d.full[b.Table.Name] && (len(recs) > 0 ||
		st != nil && (st.Stream == b.Table.Name || strings.HasPrefix(st.Stream, b.Table.Name+"@")))
	if len(recs) > 0 || startGen {
		if ti.Next == 0 {
			ti.Next = 1
		}
		n := ti.Next
		base := startGen || ti.Generation == 0
		name := d.partName(b.Table.Name, n)
		if base {
			name = d.baseName(b.Table.Name)
			old, err := d.files(b.Table.Name)
			if err != nil {
				return err
			}
			for _, f := range old {
				if f.part > 0 {
					obsolete = append(obsolete, f.path)
				}
			}
		}
		data, err := d.encode(b, recs, synced)
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.atomicWrite(name, data); err != nil {
			return err
		}
		if base {
			ti.Generation = n
		}
		ti.Next = n + 1
	}
	if b.State != nil {
		putState(next, *b.State)
	}
	if err := d.saveState(next); err != nil {
		return err
	}
	d.st = next
	if startGen {
		delete(d.full, b.Table.Name)
	}
	for _, f := range obsolete {
		os.Remove(f)
	}
	return nil
}

func cloneState(s stateFile) stateFile {
	out := stateFile{State: map[string]map[string]json.RawMessage{}, Tables: map[string]*tableInfo{}}
	for p, m := range s.State {
		c := make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			c[k] = v
		}
		out.State[p] = c
	}
	for k, v := range s.Tables {
		c := *v
		c.Columns = append([]dest.Column(nil), v.Columns...)
		out.Tables[k] = &c
	}
	return out
}

func (d *Destination) saveState(s stateFile) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := d.atomicWrite(filepath.Join(d.dir, StateFile), b); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func (d *Destination) baseName(table string) string {
	return filepath.Join(d.dir, table+"."+d.format)
}

func (d *Destination) partName(table string, n int) string {
	return filepath.Join(d.dir, fmt.Sprintf("%s.part-%06d.%s", table, n, d.format))
}

// file is one data file of a table: part 0 is the base file.
type file struct {
	path string
	part int
}

// files lists the table's data files, base first, then parts in order.
func (d *Destination) files(table string) ([]file, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var out []file
	prefix, ext := table+".part-", "."+d.format
	for _, e := range entries {
		name := e.Name()
		if name == table+ext {
			out = append(out, file{path: filepath.Join(d.dir, name)})
			continue
		}
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(name, prefix), ext), "%d", &n); err != nil || n <= 0 {
			continue
		}
		out = append(out, file{path: filepath.Join(d.dir, name), part: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].part < out[j].part })
	return out, nil
}

// atomicWrite makes path appear with data or not at all.
func (d *Destination) atomicWrite(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if d.fsyncOn {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d.fsyncOn {
		if dir, err := os.Open(filepath.Dir(path)); err == nil {
			dir.Sync()
			dir.Close()
		}
	}
	return nil
}

func (d *Destination) encode(b *dest.Batch, recs []record, synced int64) ([]byte, error) {
	switch d.format {
	case CSV:
		return encodeCSV(b, recs, synced)
	case JSONL:
		return encodeJSONL(b, recs, synced)
	default:
		return encodeParquet(b, recs, synced)
	}
}

// LoadState returns the saved cursors of a pipeline by stream.
func (d *Destination) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("files destination: %w", dest.ErrClosed)
	}
	out := map[string]json.RawMessage{}
	for k, v := range d.st.State[pipeline] {
		out[k] = v
	}
	return out, nil
}

// SaveState saves checkpoints without rows: one rewrite of the state file.
func (d *Destination) SaveState(ctx context.Context, states ...dest.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("files destination: %w", dest.ErrClosed)
	}
	next := cloneState(d.st)
	for _, st := range states {
		putState(next, st)
	}
	if err := d.saveState(next); err != nil {
		return err
	}
	d.st = next
	return nil
}

func putState(s stateFile, st dest.State) {
	p := s.State[st.Pipeline]
	if p == nil {
		p = map[string]json.RawMessage{}
		s.State[st.Pipeline] = p
	}
	p[st.Stream] = st.Cursor
}

// runRecord is one line of _stripeline_runs.jsonl; later lines of the same
// id replace earlier ones.
type runRecord struct {
	ID       string          `json:"id"`
	Pipeline string          `json:"pipeline"`
	Started  time.Time       `json:"started"`
	Finished *time.Time      `json:"finished,omitempty"`
	Status   string          `json:"status"`
	Streams  json.RawMessage `json:"streams,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// SaveRun appends the run record to _stripeline_runs.jsonl (the file is
// rewritten atomically).
func (d *Destination) SaveRun(ctx context.Context, r dest.Run) error {
	d.runsMu.Lock()
	defer d.runsMu.Unlock()
	path := filepath.Join(d.dir, RunsFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	rec := runRecord{ID: r.ID, Pipeline: r.Pipeline, Started: r.Started.UTC(), Status: r.Status, Streams: r.Streams, Error: r.Error}
	if !r.Finished.IsZero() {
		f := r.Finished.UTC()
		rec.Finished = &f
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	data := append(old, append(line, '\n')...)
	if err := d.atomicWrite(path, data); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs, newest first.
func (d *Destination) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	d.runsMu.Lock()
	b, err := os.ReadFile(filepath.Join(d.dir, RunsFile))
	d.runsMu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	byID := map[string]dest.Run{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec runRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("list runs: %s: %w", RunsFile, err)
		}
		r := dest.Run{ID: rec.ID, Pipeline: rec.Pipeline, Started: rec.Started, Status: rec.Status, Streams: rec.Streams, Error: rec.Error}
		if rec.Finished != nil {
			r.Finished = *rec.Finished
		}
		byID[r.ID] = r
	}
	var out []dest.Run
	for _, r := range byID {
		if pipeline == "" || r.Pipeline == pipeline {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ReadRows merges the table's base file and parts, later winning by id; a
// deletion stub (deleted, no values) only flags the row it follows.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	d.mu.Lock()
	ti := d.st.Tables[table]
	var types map[string]catalog.Type
	gen := 0
	if ti != nil {
		gen = ti.Generation
		types = map[string]catalog.Type{"id": catalog.TypeString}
		for _, c := range ti.Columns {
			types[c.Name] = c.Type
		}
	}
	d.mu.Unlock()
	if ti == nil {
		return nil, fmt.Errorf("read %s: %w in %s", table, dest.ErrNoTable, d.dir)
	}
	fs, err := d.files(table)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	byID := map[string]map[string]any{}
	var order []string
	for _, f := range fs {
		if f.part > 0 && f.part <= gen {
			continue // left over from an earlier generation
		}
		rows, err := d.decode(f.path, types)
		if err != nil {
			return nil, fmt.Errorf("read %s: %s: %w", table, filepath.Base(f.path), err)
		}
		for _, r := range rows {
			id, _ := r["id"].(string)
			prev, ok := byID[id]
			if !ok {
				order = append(order, id)
			}
			if ok && isStub(r) {
				prev[dest.ColDeleted] = true
				prev[dest.ColSyncedAt] = r[dest.ColSyncedAt]
				prev[dest.ColAccount] = r[dest.ColAccount]
				continue
			}
			byID[id] = r
		}
	}
	out := make([]map[string]any, 0, len(order))
	for _, id := range order {
		r := byID[id]
		for name := range types { // columns added after a file was written
			if _, ok := r[name]; !ok {
				r[name] = nil
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// isStub tells a deletion without values: deleted and every column but the
// id and the bookkeeping ones null.
func isStub(r map[string]any) bool {
	if r[dest.ColDeleted] != true {
		return false
	}
	for k, v := range r {
		switch k {
		case "id", dest.ColDeleted, dest.ColSyncedAt, dest.ColAccount:
		default:
			if v != nil {
				return false
			}
		}
	}
	return true
}

func (d *Destination) decode(path string, types map[string]catalog.Type) ([]map[string]any, error) {
	switch d.format {
	case CSV:
		return decodeCSV(path, types)
	case JSONL:
		return decodeJSONL(path, types)
	default:
		return decodeParquet(path, types)
	}
}
