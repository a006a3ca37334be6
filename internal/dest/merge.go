package dest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Convert checks a Row value against its column's type and returns it in
// the column's canonical Go type: string, int64, float64, bool or
// json.RawMessage, or nil. Batch.Merge uses it, so a value of the wrong
// shape (JSON that is not, checked with gjson's validator: a quarter of
// encoding/json's cost) fails the whole batch before anything is sent.
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
			if !gjson.ValidBytes(x) {
				return nil, fmt.Errorf("invalid JSON %.40q", x)
			}
			return x, nil
		case []byte:
			if !gjson.ValidBytes(x) {
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

// Merged is a batch folded to one row per id by Batch.Merge.
type Merged struct {
	// Rows are the rows with values, in the order their ids first appear,
	// values converted to their columns' types and the id column holding
	// the row's id.
	Rows []MergedRow
	// Stubs are the deletions without values of ids that have no row in
	// Rows: they flag a stored row deleted and leave its values alone.
	Stubs []MergedRow
}

// MergedRow is the row of one id in a merged batch.
type MergedRow struct {
	ID string
	// Values are nil for a stub. They may be the Row's own slice (when
	// it needs no conversion): destinations never change them.
	Values  []any
	Deleted bool
	Version int64
	Raw     json.RawMessage
}

// Merge folds a batch's rows into one per id, the one rule every
// destination applies:
//
//   - A later row of an id replaces an earlier one; with OnlyNewer the
//     row of the highest Version wins instead, and of rows of equal
//     versions the first stays (a tie is not written).
//   - A deletion without values (a stub) after a row of its id keeps that
//     row's values and sets its deleted flag and version (with
//     OnlyNewer, only if the stub is newer); a row with values after a
//     stub replaces the stub (with OnlyNewer, only if it is newer).
//   - A row without values that is not a deletion, a row without an id, a
//     row with the wrong number of values, a value its column cannot hold
//     and, with OnlyNewer, a row without a Version are errors naming the
//     row: nothing of the batch is written.
func (b *Batch) Merge() (*Merged, error) {
	idCol := -1
	for i, c := range b.Table.Columns {
		if c.Name == "id" {
			idCol = i
		}
	}
	if idCol < 0 {
		return nil, errors.New("the table has no id column")
	}
	m := &Merged{}
	rowAt := map[string]int{}
	stubAt := map[string]int{}
	for ri := range b.Rows {
		r := &b.Rows[ri]
		if b.OnlyNewer && r.Version <= 0 {
			return nil, fmt.Errorf("row %s has no version: a conditional write (OnlyNewer) needs one", r.ID)
		}
		if r.Values == nil {
			if err := m.addStub(b, r, rowAt, stubAt); err != nil {
				return nil, err
			}
			continue
		}
		row, err := b.convert(r, idCol)
		if err != nil {
			return nil, err
		}
		m.addRow(b, row, rowAt, stubAt)
	}
	kept := m.Stubs[:0]
	for _, s := range m.Stubs {
		if s.ID != "" {
			kept = append(kept, s)
		}
	}
	m.Stubs = kept
	return m, nil
}

// newer says whether a row of version v replaces one of version old.
func (b *Batch) newer(v, old int64) bool { return !b.OnlyNewer || v > old }

func (m *Merged) addStub(b *Batch, r *Row, rowAt, stubAt map[string]int) error {
	if !r.Deleted {
		return fmt.Errorf("row %s has no values", r.ID)
	}
	if r.ID == "" {
		return errors.New("deleted row without an id")
	}
	if i, ok := rowAt[r.ID]; ok {
		if row := &m.Rows[i]; b.newer(r.Version, row.Version) {
			row.Deleted, row.Version = true, r.Version
		}
		return nil
	}
	if i, ok := stubAt[r.ID]; ok {
		if s := &m.Stubs[i]; b.newer(r.Version, s.Version) {
			s.Version = r.Version
		}
		return nil
	}
	stubAt[r.ID] = len(m.Stubs)
	m.Stubs = append(m.Stubs, MergedRow{ID: r.ID, Deleted: true, Version: r.Version})
	return nil
}

func (m *Merged) addRow(b *Batch, row MergedRow, rowAt, stubAt map[string]int) {
	if i, ok := rowAt[row.ID]; ok {
		if b.newer(row.Version, m.Rows[i].Version) {
			m.Rows[i] = row
		}
		return
	}
	if i, ok := stubAt[row.ID]; ok {
		if !b.newer(row.Version, m.Stubs[i].Version) {
			return
		}
		m.Stubs[i].ID = "" // superseded: dropped at the end
		delete(stubAt, row.ID)
	}
	rowAt[row.ID] = len(m.Rows)
	m.Rows = append(m.Rows, row)
}

// convert checks a row with values and converts them to their columns'
// types. A row whose values already are (the engine's rows) keeps its
// Values slice: nothing is copied or boxed again.
func (b *Batch) convert(r *Row, idCol int) (MergedRow, error) {
	n := len(b.Table.Columns)
	if len(r.Values) != n {
		return MergedRow{}, fmt.Errorf("row %s has %d values for %d columns", r.ID, len(r.Values), n)
	}
	vals := r.Values
	for i, v := range r.Values {
		t := b.Table.Columns[i].Type
		if canonical(t, v) {
			continue
		}
		c, err := Convert(t, v)
		if err != nil {
			return MergedRow{}, fmt.Errorf("row %s column %s: %w", r.ID, b.Table.Columns[i].Name, err)
		}
		if &vals[0] == &r.Values[0] {
			vals = append([]any(nil), r.Values...)
		}
		vals[i] = c
	}
	id := r.ID
	if id == "" {
		id, _ = vals[idCol].(string)
	}
	if id == "" {
		return MergedRow{}, errors.New("row without an id")
	}
	if s, ok := vals[idCol].(string); !ok || s != id {
		if &vals[0] == &r.Values[0] {
			vals = append([]any(nil), r.Values...)
		}
		vals[idCol] = id
	}
	return MergedRow{ID: id, Values: vals, Deleted: r.Deleted, Version: r.Version, Raw: r.Raw}, nil
}

// canonical reports whether v already is what Convert would make of it
// for a column of type t (JSON still checked for validity).
func canonical(t catalog.Type, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return t == catalog.TypeString
	case int64:
		return t == catalog.TypeInteger
	case float64:
		return t == catalog.TypeNumber && !math.IsNaN(x) && !math.IsInf(x, 0)
	case bool:
		return t == catalog.TypeBoolean
	case json.RawMessage:
		return t == catalog.TypeJSON && x != nil && gjson.ValidBytes(x)
	}
	return false
}
