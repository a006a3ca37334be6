package files

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sort"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Tables lists the tables the directory holds (written, or migrated by
// this destination), sorted.
func (d *Destination) Tables(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	out := make([]string, 0, len(d.st.Tables))
	for name := range d.st.Tables {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// ReadRows reads a whole table.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	return dest.CollectRows(d.Rows(ctx, table))
}

// Rows streams a table: its base file and parts merged, later winning by
// id; a deletion stub (deleted, no values) only flags the row before it.
// The files are opened at the start, so a write meanwhile (even a new
// generation) changes nothing of what the read sees.
func (d *Destination) Rows(ctx context.Context, table string) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		d.mu.Lock()
		var fs []*os.File
		var types map[string]catalog.Type
		err := errClosed
		if !d.closed {
			fs, types, err = d.snapshot(table)
		}
		d.mu.Unlock()
		defer func() {
			for _, f := range fs {
				f.Close()
			}
		}()
		stopped := false
		if err == nil {
			err = scan(ctx, d.format, fs, types, func(row map[string]any) bool {
				stopped = !yield(row, nil)
				return !stopped
			})
		}
		if err != nil && !stopped {
			yield(nil, fmt.Errorf("read %s: %w", table, err))
		}
	}
}

// snapshot opens the files of the table's current generation, base first,
// and returns the columns' types. Callers hold d.mu.
func (d *Destination) snapshot(table string) ([]*os.File, map[string]catalog.Type, error) {
	ti := d.st.Tables[table]
	if ti == nil {
		return nil, nil, fmt.Errorf("%w in %s", dest.ErrNoTable, d.dir)
	}
	types := map[string]catalog.Type{"id": catalog.TypeString}
	for _, c := range ti.Columns {
		types[c.Name] = c.Type
	}
	list, err := d.files(table)
	if err != nil {
		return nil, nil, err
	}
	var fs []*os.File
	for _, f := range list {
		if f.part > 0 && f.part <= ti.Generation {
			continue // left over from an earlier generation
		}
		h, err := os.Open(f.path)
		if err != nil {
			for _, o := range fs {
				o.Close()
			}
			return nil, nil, err
		}
		fs = append(fs, h)
	}
	return fs, types, nil
}

// fate is what the parts (every file after the first) hold of one id.
type fate struct {
	last    int            // the file of the last row with values, -1 if none
	first   int            // the file of the id's first record in the parts
	flag    map[string]any // the last stub after last, which flags the row
	inFirst bool           // the first file has a record of the id
}

// scan yields the merged rows of the files, in two passes that hold only
// the parts' ids: the first indexes each id's fate in the parts, the
// second emits each id's winning record once, flagged by the stubs after
// it. It stops when fn returns false.
func scan(ctx context.Context, format string, fs []*os.File, types map[string]catalog.Type, fn func(map[string]any) bool) error {
	idx := map[string]*fate{}
	for fi := 1; fi < len(fs); fi++ {
		err := decode(format, fs[fi], types, func(r map[string]any) bool {
			id, _ := r["id"].(string)
			f := idx[id]
			if f == nil {
				f = &fate{last: -1, first: fi}
				idx[id] = f
			}
			if isStub(r) {
				f.flag = r
			} else {
				f.last, f.flag = fi, nil
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(fs[fi].Name()), err)
		}
	}
	for fi, file := range fs {
		more := true
		err := decode(format, file, types, func(r map[string]any) bool {
			if err := ctx.Err(); err != nil {
				return false
			}
			id, _ := r["id"].(string)
			f := idx[id]
			if f != nil && !wins(f, fi, r) {
				return true
			}
			if f != nil && f.flag != nil {
				for _, k := range []string{dest.ColDeleted, dest.ColSyncedAt, dest.ColAccount, dest.ColVersion} {
					r[k] = f.flag[k]
				}
			}
			more = fn(complete(r, types))
			return more
		})
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(file.Name()), err)
		}
		if !more {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// wins says whether record r, read from file fi, is its id's row.
func wins(f *fate, fi int, r map[string]any) bool {
	if fi == 0 {
		f.inFirst = true
		return f.last == -1
	}
	if isStub(r) {
		return f.last == -1 && !f.inFirst && fi == f.first
	}
	return fi == f.last
}

// complete fills the columns a file did not have (added after it was
// written) with nil, and an unknown version with 0.
func complete(r map[string]any, types map[string]catalog.Type) map[string]any {
	for name := range types {
		if _, ok := r[name]; !ok {
			r[name] = nil
		}
	}
	if r[dest.ColVersion] == nil {
		r[dest.ColVersion] = int64(0)
	}
	return r
}

// isStub tells a deletion without values: deleted and every column but the
// id and the bookkeeping ones null.
func isStub(r map[string]any) bool {
	if r[dest.ColDeleted] != true {
		return false
	}
	for k, v := range r {
		switch k {
		case "id", dest.ColDeleted, dest.ColSyncedAt, dest.ColAccount, dest.ColVersion:
		default:
			if v != nil {
				return false
			}
		}
	}
	return true
}

// decode streams the rows of one data file from its start.
func decode(format string, f *os.File, types map[string]catalog.Type, fn func(map[string]any) bool) error {
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	switch format {
	case CSV:
		return decodeCSV(f, types, fn)
	case JSONL:
		return decodeJSONL(f, types, fn)
	default:
		return decodeParquet(f, types, fn)
	}
}
