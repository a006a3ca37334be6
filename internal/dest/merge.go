package dest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/stripeline/stripeline/internal/catalog"
)

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
