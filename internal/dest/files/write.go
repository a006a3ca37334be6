package files

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// record is one row of a data file: the table's columns, then the
// bookkeeping ones (dest.Bookkeeping), and the Stripe object for JSONL.
type record struct {
	id      string
	vals    []any
	raw     json.RawMessage
	stub    bool // a deletion without values: only the id and the bookkeeping
	version int64
}

// records lays a merged batch out as the rows of a file.
func records(b *dest.Batch, m *dest.Merged, synced int64) []record {
	n := len(b.Table.Columns)
	idCol := 0
	for i, c := range b.Table.Columns {
		if c.Name == "id" {
			idCol = i
		}
	}
	out := make([]record, 0, len(m.Rows)+len(m.Stubs))
	for _, r := range m.Rows {
		vals := append(append(make([]any, 0, n+4), r.Values...), r.Deleted, synced, b.Account, r.Version)
		out = append(out, record{id: r.ID, vals: vals, raw: r.Raw, version: r.Version})
	}
	for _, s := range m.Stubs {
		vals := make([]any, n, n+4)
		vals[idCol] = s.ID
		out = append(out, record{id: s.ID, vals: append(vals, true, synced, b.Account, s.Version), stub: true, version: s.Version})
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
	// Every value is checked first: a bad one fails the batch before any
	// file exists.
	m, err := b.Merge()
	if err != nil {
		return err
	}
	synced := b.SyncedAt
	if synced.IsZero() {
		synced = time.Now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	if b.OnlyNewer {
		if err := d.keepNewer(ctx, b.Table.Name, m); err != nil {
			return err
		}
	}
	recs := records(b, m, synced.Unix())
	next := cloneState(d.st)
	ti := next.Tables[b.Table.Name]
	if ti == nil {
		ti = &tableInfo{}
		next.Tables[b.Table.Name] = ti
	}
	addColumns(ti, b.Table.Columns)
	// After BeginFull, the first rows start the new generation; so does a
	// checkpoint of the table's own stream without rows (a full re-read
	// that found nothing leaves an empty table, not the old one). Other
	// checkpoints (the events cursor) leave the pending refresh alone.
	st := b.State
	startGen := d.full[b.Table.Name] && (len(recs) > 0 ||
		st != nil && (st.Stream == b.Table.Name || strings.HasPrefix(st.Stream, b.Table.Name+"@")))
	var obsolete []string
	if len(recs) > 0 || startGen {
		if obsolete, err = d.writeData(ctx, b, ti, recs, startGen); err != nil {
			return err
		}
	}
	if st != nil {
		putState(next, *st)
	}
	if err := d.saveState(next); err != nil {
		return err
	}
	d.st = next
	d.noteVersions(b.Table.Name, recs, startGen)
	if startGen {
		delete(d.full, b.Table.Name)
	}
	for _, f := range obsolete {
		os.Remove(f)
	}
	return nil
}

// writeData writes the records as the table's next file: its base file
// when a generation starts (then the earlier parts are obsolete, returned
// to be removed once the state file is saved), else a part file.
func (d *Destination) writeData(ctx context.Context, b *dest.Batch, ti *tableInfo, recs []record, startGen bool) ([]string, error) {
	if ti.Next == 0 {
		ti.Next = 1
	}
	n := ti.Next
	base := startGen || ti.Generation == 0
	name := d.partName(b.Table.Name, n)
	var obsolete []string
	if base {
		name = d.baseName(b.Table.Name)
		old, err := d.files(b.Table.Name)
		if err != nil {
			return nil, err
		}
		for _, f := range old {
			if f.part > 0 {
				obsolete = append(obsolete, f.path)
			}
		}
	}
	data, err := d.encode(b, recs)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.atomicWrite(name, data); err != nil {
		return nil, err
	}
	if base {
		ti.Generation = n
	}
	ti.Next = n + 1
	return obsolete, nil
}

// keepNewer drops the rows of a conditional batch that are not newer than
// the version their id holds. Callers hold d.mu.
func (d *Destination) keepNewer(ctx context.Context, table string, m *dest.Merged) error {
	have, err := d.versionIndex(ctx, table)
	if err != nil {
		return err
	}
	keep := func(rows []dest.MergedRow) []dest.MergedRow {
		out := rows[:0]
		for _, r := range rows {
			if v, ok := have[r.ID]; !ok || r.Version > v {
				out = append(out, r)
			}
		}
		return out
	}
	m.Rows, m.Stubs = keep(m.Rows), keep(m.Stubs)
	return nil
}

// versionIndex returns the version each id of the table holds, reading
// the table once. Callers hold d.mu.
func (d *Destination) versionIndex(ctx context.Context, table string) (map[string]int64, error) {
	if idx := d.versions[table]; idx != nil {
		return idx, nil
	}
	idx := map[string]int64{}
	if d.st.Tables[table] != nil {
		fs, types, err := d.snapshot(table)
		if err != nil {
			return nil, err
		}
		err = scan(ctx, d.format, fs, types, func(row map[string]any) bool {
			id, _ := row["id"].(string)
			idx[id], _ = row[dest.ColVersion].(int64)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	d.versions[table] = idx
	return idx, nil
}

// noteVersions keeps the version index of a table in step with a write
// (a new generation drops it: it is read again when needed). Callers
// hold d.mu.
func (d *Destination) noteVersions(table string, recs []record, newGen bool) {
	idx := d.versions[table]
	if newGen || idx == nil {
		delete(d.versions, table)
		return
	}
	for _, r := range recs {
		idx[r.id] = r.version
	}
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

func (d *Destination) encode(b *dest.Batch, recs []record) ([]byte, error) {
	switch d.format {
	case CSV:
		return encodeCSV(b, recs)
	case JSONL:
		return encodeJSONL(b, recs)
	default:
		return encodeParquet(b, recs)
	}
}
