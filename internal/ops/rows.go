package ops

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Input formats of a load file.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Row is one data row of a load file turned into request parameters.
type Row struct {
	// Num is the 1-based data row: the CSV header is not counted; for JSONL
	// it is the line number.
	Num int
	// ID is the row's "id" column (an existing object's id), or "".
	ID string
	// Params are the row's other columns in bracket notation. Empty CSV
	// cells are left out; JSONL nulls become "" (unset).
	Params Params
	// Err is set when the row could not be read (bad JSON, wrong number of
	// CSV fields); nothing is sent for it.
	Err error
}

// DetectFormat returns the input format from a file name's extension.
func DetectFormat(name string) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("cannot tell the format of %q: name it .csv or .jsonl, or pass --input-format csv|jsonl", name)
}

// Mapping renames input columns to parameters ("--map col=param"); a column
// mapped to "" is dropped.
type Mapping map[string]string

// ParseMapping reads "col=param" pairs.
func ParseMapping(pairs []string) (Mapping, error) {
	m := Mapping{}
	for _, p := range pairs {
		col, param, ok := strings.Cut(p, "=")
		if !ok || col == "" {
			return nil, fmt.Errorf("--map %q: expected column=parameter, e.g. --map mail=email", p)
		}
		if param != "" {
			if _, err := ParseKey(param); err != nil {
				return nil, fmt.Errorf("--map %q: %w", p, err)
			}
		}
		m[col] = param
	}
	return m, nil
}

// apply renames a key: an exact match, or the top-level name of a nested
// JSONL key ("ext[a]" with ext=metadata → "metadata[a]"). drop is true when
// the column maps to "".
func (m Mapping) apply(key string) (out string, drop bool) {
	if to, ok := m[key]; ok {
		return to, to == ""
	}
	if i := strings.IndexByte(key, '['); i > 0 {
		if to, ok := m[key[:i]]; ok {
			if to == "" {
				return "", true
			}
			return to + key[i:], false
		}
	}
	return key, false
}

// ReadRows reads every data row of a CSV (header → parameters, bracket
// notation allowed in the header) or JSONL file (one object a line,
// flattened to bracket notation). An error in the file's structure (bad
// header, broken quoting) is returned; an error in one row is kept on it.
func ReadRows(r io.Reader, format string, m Mapping) ([]Row, error) {
	switch format {
	case FormatCSV:
		return readCSV(r, m)
	case FormatJSONL:
		return readJSONL(r, m)
	}
	return nil, fmt.Errorf("input format %q is not supported: use csv or jsonl", format)
}

func readCSV(r io.Reader, m Mapping) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("read CSV: the file is empty (expected a header line)")
	}
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	keys := make([]string, len(header))
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		k, drop := m.apply(h)
		if drop {
			continue
		}
		if k == "" {
			return nil, fmt.Errorf("read CSV header: column %d has no name", i+1)
		}
		if _, err := ParseKey(k); err != nil {
			return nil, fmt.Errorf("read CSV header: column %d: %w", i+1, err)
		}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("read CSV header: columns %d and %d are both %q", j+1, i+1, k)
		}
		seen[k] = i
		keys[i] = k
	}
	var rows []Row
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read CSV row %d: %w", n, err)
		}
		row := Row{Num: n}
		if len(rec) != len(header) {
			row.Err = fmt.Errorf("has %d fields, the header has %d", len(rec), len(header))
			rows = append(rows, row)
			continue
		}
		for i, v := range rec {
			if keys[i] == "" || v == "" {
				continue
			}
			row.add(keys[i], v)
		}
		rows = append(rows, row)
	}
}

func (row *Row) add(key, value string) {
	if key == "id" {
		row.ID = value
		return
	}
	row.Params = append(row.Params, Param{Key: key, Value: value})
}

func readJSONL(r io.Reader, m Mapping) ([]Row, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var rows []Row
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			return rows, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read JSONL line %d: %w", n, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			rows = append(rows, jsonRow(n, line, m))
		}
		if err == io.EOF {
			return rows, nil
		}
	}
}

func jsonRow(n int, line []byte, m Mapping) Row {
	row := Row{Num: n}
	p, err := FlattenJSON(line)
	if err != nil {
		row.Err = err
		return row
	}
	for _, kv := range p {
		k, drop := m.apply(kv.Key)
		if drop {
			continue
		}
		row.add(k, kv.Value)
	}
	return row
}
