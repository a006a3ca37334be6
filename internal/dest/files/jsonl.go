package files

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// encodeJSONL writes each row as the Stripe object (its Raw) plus the
// bookkeeping fields; a row without Raw (and a deletion stub) is built
// from its column values.
func encodeJSONL(b *dest.Batch, recs []record) ([]byte, error) {
	var buf bytes.Buffer
	cols := allColumns(b)
	n := len(b.Table.Columns)
	for _, r := range recs {
		raw := bytes.TrimSpace(r.raw)
		obj := !r.stub && len(raw) > 1 && raw[0] == '{'
		if obj {
			if err := json.Compact(&buf, raw); err != nil {
				return nil, fmt.Errorf("row %s: raw object: %w", r.id, err)
			}
			buf.Truncate(buf.Len() - 1) // the closing brace: the fields below follow
		} else {
			buf.WriteByte('{')
		}
		first := !obj || bytes.HasSuffix(buf.Bytes(), []byte("{"))
		for i, c := range cols {
			// Beside the Stripe object go the columns it does not have:
			// those the engine adds (the parent id of a child row) and the
			// bookkeeping ones. A row without it is all its columns.
			if obj && i < n && !strings.HasPrefix(c.Name, "_stripeline_") || r.stub && i < n && c.Name != "id" {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err := jsonField(&buf, c.Name, r.vals[i]); err != nil {
				return nil, fmt.Errorf("row %s column %s: %w", r.id, c.Name, err)
			}
		}
		buf.WriteString("}\n")
	}
	return buf.Bytes(), nil
}

// jsonField writes "name":value.
func jsonField(buf *bytes.Buffer, name string, v any) error {
	k, _ := json.Marshal(name)
	buf.Write(k)
	buf.WriteByte(':')
	if raw, ok := v.(json.RawMessage); ok {
		return json.Compact(buf, raw)
	}
	enc, err := json.Marshal(v)
	buf.Write(enc)
	return err
}

// decodeJSONL streams the rows of a JSONL data file: the table's columns
// and the bookkeeping fields of each object.
func decodeJSONL(r io.Reader, types map[string]catalog.Type, fn func(map[string]any) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	bk := map[string]catalog.Type{}
	for _, c := range dest.Bookkeeping() {
		bk[c.Name] = c.Type
	}
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		m := map[string]any{}
		for name, raw := range obj {
			t, known := types[name]
			if bt, ok := bk[name]; ok {
				t, known = bt, true
			}
			if !known {
				continue
			}
			v, err := fromJSON(t, raw)
			if err != nil {
				return fmt.Errorf("line %d field %s: %w", line, name, err)
			}
			m[name] = v
		}
		if !fn(m) {
			return nil
		}
	}
	return sc.Err()
}

// fromJSON turns one top-level field of an object into a column value.
func fromJSON(t catalog.Type, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	switch t {
	case catalog.TypeInteger:
		return strconv.ParseInt(string(raw), 10, 64)
	case catalog.TypeNumber:
		return strconv.ParseFloat(string(raw), 64)
	case catalog.TypeBoolean:
		return strconv.ParseBool(string(raw))
	case catalog.TypeJSON:
		return json.RawMessage(append([]byte(nil), raw...)), nil
	default:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
		var ref struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &ref) == nil && ref.ID != "" {
			return ref.ID, nil // an expanded reference holds its id
		}
		return string(raw), nil
	}
}
