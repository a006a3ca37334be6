package files

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/stripeline/stripeline/internal/dest"
)

// TableWriter writes the rows of one table to a writer as csv, jsonl or
// parquet, one row at a time, so that an export never holds the table:
// `stripeline export` uses it. JSONL objects hold the columns in order;
// nested values stay JSON. Not safe for concurrent use.
type TableWriter struct {
	format string
	cols   []dest.Column
	csv    *csv.Writer
	rec    []string
	bw     *bufio.Writer
	line   bytes.Buffer
	pw     *parquet.GenericWriter[any]
	at     []int
	prow   parquet.Row
}

// NewTableWriter starts a table of cols in format on w (the CSV header
// first).
func NewTableWriter(w io.Writer, format, name string, cols []dest.Column) (*TableWriter, error) {
	t := &TableWriter{format: format, cols: cols}
	switch format {
	case CSV:
		t.csv, t.rec = csv.NewWriter(w), make([]string, len(cols))
		for i, c := range cols {
			t.rec[i] = c.Name
		}
		if err := t.csv.Write(t.rec); err != nil {
			return nil, err
		}
	case JSONL:
		t.bw = bufio.NewWriter(w)
	case Parquet:
		var schema *parquet.Schema
		schema, t.at = parquetSchema(name, cols)
		t.pw = parquet.NewGenericWriter[any](w, schema, parquet.Compression(&parquet.Snappy))
		t.prow = make(parquet.Row, len(cols))
	default:
		return nil, fmt.Errorf("format %q is not supported: use csv, jsonl or parquet", format)
	}
	return t, nil
}

// Write writes one row, values aligned with the columns (of the
// contract's value types).
func (t *TableWriter) Write(row []any) error {
	switch t.format {
	case CSV:
		for i, v := range row {
			t.rec[i] = cell(v)
		}
		return t.csv.Write(t.rec)
	case JSONL:
		t.line.Reset()
		t.line.WriteByte('{')
		for i, c := range t.cols {
			if i > 0 {
				t.line.WriteByte(',')
			}
			if err := jsonField(&t.line, c.Name, row[i]); err != nil {
				return fmt.Errorf("column %s: %w", c.Name, err)
			}
		}
		t.line.WriteString("}\n")
		_, err := t.bw.Write(t.line.Bytes())
		return err
	default:
		vals := make([]any, len(row))
		for i, c := range t.cols {
			v, err := dest.Convert(c.Type, row[i])
			if err != nil {
				return fmt.Errorf("column %s: %w", c.Name, err)
			}
			vals[i] = v
		}
		_, err := t.pw.WriteRows([]parquet.Row{parquetRow(t.prow, vals, t.at)})
		return err
	}
}

// Close ends the table (Parquet's footer) and flushes what is buffered.
func (t *TableWriter) Close() error {
	switch t.format {
	case CSV:
		t.csv.Flush()
		return t.csv.Error()
	case JSONL:
		return t.bw.Flush()
	default:
		return t.pw.Close()
	}
}

// WriteTable writes rows (values aligned with cols, of the contract's value
// types) to w as csv, jsonl or parquet: a TableWriter over a slice.
func WriteTable(w io.Writer, format, name string, cols []dest.Column, rows [][]any) error {
	t, err := NewTableWriter(w, format, name, cols)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := t.Write(r); err != nil {
			return err
		}
	}
	return t.Close()
}
