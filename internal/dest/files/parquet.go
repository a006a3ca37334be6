package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

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

// parquetSchema is the schema of a file of cols, and each column's leaf
// index (leaves are ordered by name).
func parquetSchema(name string, cols []dest.Column) (*parquet.Schema, []int) {
	group := parquet.Group{}
	for _, c := range cols {
		group[c.Name] = parquetNode(c.Type)
	}
	schema := parquet.NewSchema(name, group)
	index := map[string]int{}
	for i, f := range schema.Fields() {
		index[f.Name()] = i
	}
	at := make([]int, len(cols))
	for i, c := range cols {
		at[i] = index[c.Name]
	}
	return schema, at
}

// parquetRow lays values (of the contract's types) out as a row of the
// schema.
func parquetRow(row parquet.Row, vals []any, at []int) parquet.Row {
	for i, v := range vals {
		ci := at[i]
		if v == nil {
			row[ci] = parquet.NullValue().Level(0, 0, ci)
			continue
		}
		if raw, ok := v.(json.RawMessage); ok {
			v = string(raw)
		}
		row[ci] = parquet.ValueOf(v).Level(0, 1, ci)
	}
	return row
}

// encodeParquet writes a file typed from the table's schema: optional
// string, int64, double and boolean columns, JSON as string.
func encodeParquet(b *dest.Batch, recs []record) ([]byte, error) {
	cols := allColumns(b)
	schema, at := parquetSchema(b.Table.Name, cols)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[any](&buf, schema, parquet.Compression(&parquet.Snappy))
	rows := make([]parquet.Row, len(recs))
	for i, r := range recs {
		rows[i] = parquetRow(make(parquet.Row, len(cols)), r.vals, at)
	}
	if _, err := w.WriteRows(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeParquet streams the rows of a Parquet data file.
func decodeParquet(f *os.File, types map[string]catalog.Type, fn func(map[string]any) bool) error {
	r := parquet.NewReader(f)
	defer r.Close()
	fields := r.Schema().Fields()
	names := make([]string, len(fields))
	for i, fl := range fields {
		names[i] = fl.Name()
	}
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			m := make(map[string]any, len(names))
			for _, v := range row {
				name := names[v.Column()]
				m[name] = parquetValue(typeOf(types, name), v)
			}
			if !fn(m) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parquetValue reads one value of a column of type t.
func parquetValue(t catalog.Type, v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	switch t {
	case catalog.TypeInteger:
		return v.Int64()
	case catalog.TypeNumber:
		return v.Double()
	case catalog.TypeBoolean:
		return v.Boolean()
	case catalog.TypeJSON:
		return json.RawMessage(append([]byte(nil), v.ByteArray()...))
	default:
		return string(v.ByteArray())
	}
}
