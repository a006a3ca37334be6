package files

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// bookkeeping are the columns every file carries after the table's own.
var bookkeeping = []dest.Column{
	{Name: dest.ColDeleted, Type: catalog.TypeBoolean},
	{Name: dest.ColSyncedAt, Type: catalog.TypeInteger},
	{Name: dest.ColAccount, Type: catalog.TypeString},
}

// values returns a record's converted values for the table's columns
// followed by the bookkeeping ones (nil values for a deletion stub).
func values(b *dest.Batch, rec record, synced int64) ([]any, error) {
	n := len(b.Table.Columns)
	out := make([]any, n, n+3)
	if rec.stub {
		for i, c := range b.Table.Columns {
			if c.Name == "id" {
				out[i] = rec.row.ID
			}
		}
	} else {
		for i, c := range b.Table.Columns {
			v, err := dest.Convert(c.Type, rec.row.Values[i])
			if err != nil {
				return nil, fmt.Errorf("row %s column %s: %w", rec.row.ID, c.Name, err)
			}
			if c.Name == "id" && rec.row.ID != "" {
				v = rec.row.ID
			}
			out[i] = v
		}
	}
	return append(out, rec.deleted, synced, b.Account), nil
}

func allColumns(b *dest.Batch) []dest.Column {
	return append(append([]dest.Column(nil), b.Table.Columns...), bookkeeping...)
}

// cell renders a value for CSV: nested values as JSON, null as empty.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case json.RawMessage:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

// encodeCSV writes RFC 4180 CSV with a header row. NULL is an empty
// unquoted field and the empty string a quoted one (""), the convention of
// PostgreSQL's COPY … CSV, so that the two read back apart; encoding/csv
// cannot write "" for an empty field, hence the small writer here.
func encodeCSV(b *dest.Batch, recs []record, synced int64) ([]byte, error) {
	var buf bytes.Buffer
	cols := allColumns(b)
	for i, c := range cols {
		if i > 0 {
			buf.WriteByte(',')
		}
		csvField(&buf, c.Name)
	}
	buf.WriteByte('\n')
	for _, r := range recs {
		vals, err := values(b, r, synced)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			if v != nil {
				csvField(&buf, cell(v))
			}
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// csvField writes one non-null field, quoted when it is empty or holds a
// delimiter, a quote, a line break or leading space.
func csvField(buf *bytes.Buffer, s string) {
	if s != "" && !strings.ContainsAny(s, ",\"\r\n") && s[0] != ' ' && s[0] != '\t' {
		buf.WriteString(s)
		return
	}
	buf.WriteByte('"')
	buf.WriteString(strings.ReplaceAll(s, `"`, `""`))
	buf.WriteByte('"')
}

// parseCell turns CSV text back into a typed value: an unquoted empty
// field is null, a quoted one the empty string.
func parseCell(typ catalog.Type, name, s string, quoted bool) (any, error) {
	if s == "" {
		if name == dest.ColAccount || quoted && typ == catalog.TypeString {
			return "", nil
		}
		return nil, nil
	}
	switch typ {
	case catalog.TypeInteger:
		return strconv.ParseInt(s, 10, 64)
	case catalog.TypeNumber:
		return strconv.ParseFloat(s, 64)
	case catalog.TypeBoolean:
		return strconv.ParseBool(s)
	case catalog.TypeJSON:
		return json.RawMessage(s), nil
	default:
		return s, nil
	}
}

func typeOf(types map[string]catalog.Type, name string) catalog.Type {
	for _, c := range bookkeeping {
		if c.Name == name {
			return c.Type
		}
	}
	if t, ok := types[name]; ok {
		return t
	}
	return catalog.TypeString
}

func decodeCSV(path string, types map[string]catalog.Type) ([]map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Line starts let an empty field's position tell "" from null.
	lineStart := []int{0}
	for i, c := range data {
		if c == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	quotedAt := func(r *csv.Reader, field int) bool {
		line, col := r.FieldPos(field)
		if line < 1 || line > len(lineStart) {
			return false
		}
		off := lineStart[line-1] + col - 1
		return off >= 0 && off < len(data) && data[off] == '"'
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, err
	}
	header = append([]string(nil), header...)
	var out []map[string]any
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(header))
		for i, name := range header {
			v, err := parseCell(typeOf(types, name), name, rec[i], rec[i] == "" && quotedAt(r, i))
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", name, err)
			}
			m[name] = v
		}
		out = append(out, m)
	}
}

// encodeJSONL writes each row as the Stripe object (Row.Raw) plus the
// bookkeeping fields; a row without Raw is built from its column values.
func encodeJSONL(b *dest.Batch, recs []record, synced int64) ([]byte, error) {
	var buf bytes.Buffer
	acct, _ := json.Marshal(b.Account)
	for _, r := range recs {
		start := buf.Len()
		raw := bytes.TrimSpace(r.row.Raw)
		if !r.stub && len(raw) > 1 && raw[0] == '{' {
			if err := json.Compact(&buf, raw); err != nil {
				return nil, fmt.Errorf("row %s: raw object: %w", r.row.ID, err)
			}
		} else {
			vals, err := values(b, r, synced)
			if err != nil {
				return nil, err
			}
			obj := map[string]any{}
			for i, c := range b.Table.Columns {
				if r.stub && c.Name != "id" {
					continue
				}
				obj[c.Name] = vals[i]
			}
			if _, ok := obj["id"]; !ok {
				obj["id"] = r.row.ID
			}
			enc, err := json.Marshal(obj)
			if err != nil {
				return nil, fmt.Errorf("row %s: %w", r.row.ID, err)
			}
			buf.Write(enc)
		}
		// Replace the closing brace with the bookkeeping fields.
		buf.Truncate(buf.Len() - 1)
		if buf.Len()-start > 1 {
			buf.WriteByte(',')
		}
		if !r.stub && len(raw) > 1 && raw[0] == '{' {
			// Columns the engine adds (the parent id of a child row) are
			// not in the Stripe object: write them beside it.
			for i, c := range b.Table.Columns {
				if !strings.HasPrefix(c.Name, "_stripeline_") || i >= len(r.row.Values) {
					continue
				}
				v, err := dest.Convert(c.Type, r.row.Values[i])
				if err != nil {
					return nil, fmt.Errorf("row %s column %s: %w", r.row.ID, c.Name, err)
				}
				k, _ := json.Marshal(c.Name)
				enc, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("row %s column %s: %w", r.row.ID, c.Name, err)
				}
				buf.Write(k)
				buf.WriteByte(':')
				buf.Write(enc)
				buf.WriteByte(',')
			}
		}
		fmt.Fprintf(&buf, `"%s":%t,"%s":%d,"%s":%s}`+"\n", dest.ColDeleted, r.deleted, dest.ColSyncedAt, synced, dest.ColAccount, acct)
	}
	return buf.Bytes(), nil
}

func decodeJSONL(path string, types map[string]catalog.Type) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	var out []map[string]any
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		m := map[string]any{}
		for name, raw := range obj {
			t, known := types[name]
			isBK := false
			for _, c := range bookkeeping {
				if c.Name == name {
					t, isBK = c.Type, true
				}
			}
			if !known && !isBK {
				continue
			}
			v, err := fromJSON(t, raw)
			if err != nil {
				return nil, fmt.Errorf("line %d field %s: %w", line, name, err)
			}
			m[name] = v
		}
		out = append(out, m)
	}
	return out, sc.Err()
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

func parquetNode(t catalog.Type) parquet.Node {
	switch t {
	case catalog.TypeInteger:
		return parquet.Optional(parquet.Int(64))
	case catalog.TypeNumber:
		return parquet.Optional(parquet.Leaf(parquet.DoubleType))
	case catalog.TypeBoolean:
		return parquet.Optional(parquet.Leaf(parquet.BooleanType))
	default: // strings, and JSON as its text
		return parquet.Optional(parquet.String())
	}
}

// encodeParquet writes a file typed from the table's schema: optional
// string, int64, double and boolean columns, JSON as string.
func encodeParquet(b *dest.Batch, recs []record, synced int64) ([]byte, error) {
	cols := allColumns(b)
	group := parquet.Group{}
	for _, c := range cols {
		group[c.Name] = parquetNode(c.Type)
	}
	schema := parquet.NewSchema(b.Table.Name, group)
	// Leaf columns are ordered by name; map each to its index.
	fields := schema.Fields()
	index := make(map[string]int, len(fields))
	for i, f := range fields {
		index[f.Name()] = i
	}
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema, parquet.Compression(&parquet.Snappy))
	rows := make([]parquet.Row, 0, len(recs))
	for _, r := range recs {
		vals, err := values(b, r, synced)
		if err != nil {
			return nil, err
		}
		row := make(parquet.Row, len(fields))
		for i, c := range cols {
			ci := index[c.Name]
			v := vals[i]
			if v == nil {
				row[ci] = parquet.NullValue().Level(0, 0, ci)
				continue
			}
			if raw, ok := v.(json.RawMessage); ok {
				v = string(raw)
			}
			row[ci] = parquet.ValueOf(v).Level(0, 1, ci)
		}
		rows = append(rows, row)
	}
	if _, err := w.WriteRows(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeParquet(path string, types map[string]catalog.Type) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := parquet.NewReader(f)
	defer r.Close()
	fields := r.Schema().Fields()
	names := make([]string, len(fields))
	for i, fl := range fields {
		names[i] = fl.Name()
	}
	var out []map[string]any
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			m := make(map[string]any, len(names))
			for _, v := range row {
				name := names[v.Column()]
				if v.IsNull() {
					m[name] = nil
					continue
				}
				switch typeOf(types, name) {
				case catalog.TypeInteger:
					m[name] = v.Int64()
				case catalog.TypeNumber:
					m[name] = v.Double()
				case catalog.TypeBoolean:
					m[name] = v.Boolean()
				case catalog.TypeJSON:
					m[name] = json.RawMessage(append([]byte(nil), v.ByteArray()...))
				default:
					m[name] = string(v.ByteArray())
				}
			}
			out = append(out, m)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// WriteTable writes rows (values aligned with cols, of the contract's value
// types) to w as csv, jsonl or parquet: `stripeline export` uses it. JSONL
// objects hold the columns in order; nested values stay JSON.
func WriteTable(w io.Writer, format, name string, cols []dest.Column, rows [][]any) error {
	switch format {
	case CSV:
		cw := csv.NewWriter(w)
		header := make([]string, len(cols))
		for i, c := range cols {
			header[i] = c.Name
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		rec := make([]string, len(cols))
		for _, r := range rows {
			for i, v := range r {
				rec[i] = cell(v)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case JSONL:
		bw := bufio.NewWriter(w)
		for _, r := range rows {
			bw.WriteByte('{')
			for i, c := range cols {
				if i > 0 {
					bw.WriteByte(',')
				}
				k, _ := json.Marshal(c.Name)
				bw.Write(k)
				bw.WriteByte(':')
				v := r[i]
				if raw, ok := v.(json.RawMessage); ok {
					var cb bytes.Buffer
					if json.Compact(&cb, raw) == nil {
						bw.Write(cb.Bytes())
						continue
					}
					v = string(raw)
				}
				b, err := json.Marshal(v)
				if err != nil {
					return err
				}
				bw.Write(b)
			}
			bw.WriteString("}\n")
		}
		return bw.Flush()
	case Parquet:
		group := parquet.Group{}
		for _, c := range cols {
			group[c.Name] = parquetNode(c.Type)
		}
		schema := parquet.NewSchema(name, group)
		index := map[string]int{}
		for i, f := range schema.Fields() {
			index[f.Name()] = i
		}
		pw := parquet.NewWriter(w, schema, parquet.Compression(&parquet.Snappy))
		prow := make(parquet.Row, len(cols))
		for _, r := range rows {
			for i, c := range cols {
				ci := index[c.Name]
				v, err := dest.Convert(c.Type, r[i])
				if err != nil {
					return fmt.Errorf("column %s: %w", c.Name, err)
				}
				if v == nil {
					prow[ci] = parquet.NullValue().Level(0, 0, ci)
					continue
				}
				if raw, ok := v.(json.RawMessage); ok {
					v = string(raw)
				}
				prow[ci] = parquet.ValueOf(v).Level(0, 1, ci)
			}
			if _, err := pw.WriteRows([]parquet.Row{prow}); err != nil {
				return err
			}
		}
		return pw.Close()
	}
	return fmt.Errorf("format %q is not supported: use csv, jsonl or parquet", format)
}
