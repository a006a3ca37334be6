// Package files is the file destinations: csv://DIR, jsonl://DIR and
// parquet://DIR. A stream's first write (and the first write after
// BeginFull) makes its base file, customers.csv; later writes append part
// files, customers.part-000002.csv. Every file appears atomically (temp file
// in the same directory, fsync, rename, fsync of the directory), and the
// state file _stripeline_state.json, which also records each table's
// generation and columns, is rewritten after the data files it covers.
// Reading merges the base file and its parts, later winning by id, as a
// stream that holds only an index of the parts' ids.
//
// Conditional writes (Batch.OnlyNewer): "newer" is decided when a row is
// written, against the version each id holds now (an index of the table's
// versions, read from its files once and kept while this process holds
// the directory); a row that is not newer is not written at all, so the
// files hold only rows that won.
package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

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
	_ dest.Locker        = (*Destination)(nil)
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

	mu       sync.Mutex // guards st, full, versions, and the files of the directory
	st       stateFile
	full     map[string]bool             // tables whose next write starts a generation
	versions map[string]map[string]int64 // table → id → version, once a conditional write needed it
	closed   bool
	runsMu   sync.Mutex
	fsyncOn  bool
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
	return &Destination{format: format, dir: dir, full: map[string]bool{}, versions: map[string]map[string]int64{}, fsyncOn: true, st: st}, nil
}

// errClosed is the error of every call after Close.
var errClosed = fmt.Errorf("files destination: %w", dest.ErrClosed)

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
		return errClosed
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
	if d.closed {
		return errClosed
	}
	d.full[table] = true
	return nil
}

// LoadState returns the saved cursors of a pipeline by stream.
func (d *Destination) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
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
		return errClosed
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
