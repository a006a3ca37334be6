package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// errNoID marks an object that cannot be a row: every Stripe object has an
// id, so this only comes from a broken upstream; the object is skipped.
var errNoID = errors.New("object without an id")

// ParentColumn holds, in a child table, the id of the parent object the row
// was listed under (the child object does not always carry it).
const ParentColumn = "_stripeline_parent"

// table is one replica table's live shape. Columns are only ever appended,
// so a Values slice built against an older shape is a prefix of the current one.
type table struct {
	name     string
	child    bool
	selected map[string]bool // nil: every field

	mu      sync.RWMutex
	columns []dest.Column
	index   map[string]int
	dst     dest.Destination
	// written indexes the two-way fields remembered in ColWritten.
	written []int
}

func newTable(s catalog.Stream, fields []string, dst dest.Destination) *table {
	t := &table{name: s.Name, child: s.Parent != "", dst: dst, index: map[string]int{}}
	if len(fields) > 0 {
		t.selected = map[string]bool{"id": true}
		for _, f := range fields {
			t.selected[f] = true
		}
	}
	for _, c := range s.Columns {
		if t.selected != nil && !t.selected[c.Name] {
			continue
		}
		t.add(c.Name, c.Type)
	}
	if _, ok := t.index["id"]; !ok {
		t.columns = append([]dest.Column{{Name: "id", Type: catalog.TypeString}}, t.columns...)
		t.reindex()
	}
	if t.child {
		t.add(ParentColumn, catalog.TypeString)
	}
	return t
}

func (t *table) add(name string, typ catalog.Type) {
	t.index[name] = len(t.columns)
	t.columns = append(t.columns, dest.Column{Name: name, Type: typ})
}

func (t *table) reindex() {
	t.index = make(map[string]int, len(t.columns))
	for i, c := range t.columns {
		t.index[c.Name] = i
	}
}

// shape returns the current table definition.
func (t *table) shape() dest.Table {
	t.mu.RLock()
	defer t.mu.RUnlock()
	cols := make([]dest.Column, len(t.columns))
	copy(cols, t.columns)
	return dest.Table{Name: t.name, Columns: cols}
}

// evolve adds columns for fields the spec did not list (schema evolution)
// and migrates the destination before any row uses them.
func (t *table) evolve(ctx context.Context, fields map[string]catalog.Type) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	added := false
	for name, typ := range fields {
		if _, ok := t.index[name]; ok {
			continue
		}
		t.add(name, typ)
		added = true
	}
	if !added {
		return nil
	}
	cols := make([]dest.Column, len(t.columns))
	copy(cols, t.columns)
	if err := t.dst.Migrate(ctx, dest.Table{Name: t.name, Columns: cols}); err != nil {
		return fmt.Errorf("add columns to %s: %w", t.name, err)
	}
	return nil
}

// row converts one Stripe object into a row of t. parent is the parent id
// for child tables.
func (t *table) row(ctx context.Context, obj json.RawMessage, parent string, deleted bool) (dest.Row, error) {
	// The object's bytes are a read-only slice of the page body, which the
	// row keeps anyway (Raw): parse them in place instead of copying, so
	// string values and JSON sub-values share that memory.
	if len(obj) == 0 {
		return dest.Row{}, errNoID
	}
	parsed := gjson.Parse(unsafe.String(&obj[0], len(obj)))
	t.mu.RLock()
	values := make([]any, len(t.columns))
	var unknown map[string]catalog.Type
	parsed.ForEach(func(k, v gjson.Result) bool {
		i, ok := t.index[k.Str]
		if !ok {
			if t.selected == nil && k.Str != "" {
				if unknown == nil {
					unknown = map[string]catalog.Type{}
				}
				unknown[k.Str] = inferType(v)
			}
			return true
		}
		values[i] = convertIn(obj, v, t.columns[i].Type)
		return true
	})
	if t.child {
		values[t.index[ParentColumn]] = parent
	}
	if t.written != nil {
		values[t.index[ColWritten]] = t.writtenValue(values)
	}
	t.mu.RUnlock()
	if unknown != nil {
		if err := t.evolve(ctx, unknown); err != nil {
			return dest.Row{}, err
		}
		return t.row(ctx, obj, parent, deleted)
	}
	id, _ := values[t.index["id"]].(string)
	if id == "" {
		return dest.Row{}, errNoID
	}
	return dest.Row{ID: id, Values: values, Deleted: deleted, Raw: obj}, nil
}

// clear empties one field of a row built for t, in its values and its raw
// object alike.
func (t *table) clear(row *dest.Row, field string) {
	t.mu.RLock()
	i, ok := t.index[field]
	t.mu.RUnlock()
	if ok && i < len(row.Values) {
		row.Values[i] = nil
	}
	row.Raw = withoutField(row.Raw, field)
}

// withoutField returns obj without one top-level field (a copy when it is
// there, obj itself otherwise).
func withoutField(obj json.RawMessage, field string) json.RawMessage {
	start, end := -1, -1
	gjson.ParseBytes(obj).ForEach(func(k, v gjson.Result) bool {
		if k.Str == field {
			start, end = k.Index, v.Index+len(v.Raw)
			return false
		}
		return true
	})
	if start < 0 || end > len(obj) {
		return obj
	}
	// Take the comma after the field, or else the one before it.
	rest := end
	for rest < len(obj) && (obj[rest] == ' ' || obj[rest] == '\n' || obj[rest] == '\t' || obj[rest] == '\r') {
		rest++
	}
	if rest < len(obj) && obj[rest] == ',' {
		end = rest + 1
	} else {
		for start > 0 && obj[start-1] != ',' && obj[start-1] != '{' {
			start--
		}
		if start > 0 && obj[start-1] == ',' {
			start--
		}
	}
	out := make(json.RawMessage, 0, len(obj)-(end-start))
	out = append(out, obj[:start]...)
	return append(out, obj[end:]...)
}

// inferType types a field the spec does not describe.
func inferType(v gjson.Result) catalog.Type {
	switch v.Type {
	case gjson.String:
		return catalog.TypeString
	case gjson.True, gjson.False:
		return catalog.TypeBoolean
	case gjson.Number:
		if _, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
			return catalog.TypeInteger
		}
		return catalog.TypeNumber
	default:
		return catalog.TypeJSON
	}
}

// convertIn is convert for a value parsed from obj in place: JSON values
// become sub-slices of obj rather than copies.
func convertIn(obj []byte, v gjson.Result, typ catalog.Type) any {
	if typ == catalog.TypeJSON && v.Index > 0 && v.Index+len(v.Raw) <= len(obj) && v.Type != gjson.Null {
		return json.RawMessage(obj[v.Index : v.Index+len(v.Raw) : v.Index+len(v.Raw)])
	}
	return convert(v, typ)
}

// convert maps a JSON value to the Go value of a column type.
func convert(v gjson.Result, typ catalog.Type) any {
	if v.Type == gjson.Null || !v.Exists() {
		return nil
	}
	switch typ {
	case catalog.TypeString:
		switch v.Type {
		case gjson.String:
			return v.Str
		case gjson.JSON:
			if v.IsObject() {
				// An expanded reference keeps only its id.
				if id := v.Get("id"); id.Type == gjson.String {
					return id.Str
				}
			}
			return v.Raw
		default:
			return v.Raw
		}
	case catalog.TypeInteger:
		switch v.Type {
		case gjson.Number:
			if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
				return n
			}
			return int64(v.Float())
		case gjson.String:
			if n, err := strconv.ParseInt(v.Str, 10, 64); err == nil {
				return n
			}
			return nil
		case gjson.True:
			return int64(1)
		case gjson.False:
			return int64(0)
		}
		return nil
	case catalog.TypeNumber:
		if v.Type == gjson.Number || v.Type == gjson.String {
			if f, err := strconv.ParseFloat(v.String(), 64); err == nil {
				return f
			}
		}
		return nil
	case catalog.TypeBoolean:
		switch v.Type {
		case gjson.True:
			return true
		case gjson.False:
			return false
		}
		return nil
	default:
		return json.RawMessage(v.Raw)
	}
}
