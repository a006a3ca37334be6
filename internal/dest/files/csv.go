package files

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// allColumns are a batch's columns followed by the bookkeeping ones, the
// layout of a record's vals.
func allColumns(b *dest.Batch) []dest.Column {
	return append(append([]dest.Column(nil), b.Table.Columns...), dest.Bookkeeping()...)
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
func encodeCSV(b *dest.Batch, recs []record) ([]byte, error) {
	var buf bytes.Buffer
	for i, c := range allColumns(b) {
		if i > 0 {
			buf.WriteByte(',')
		}
		csvField(&buf, c.Name)
	}
	buf.WriteByte('\n')
	for _, r := range recs {
		for i, v := range r.vals {
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

// typeOf is the type of a column of a file: the bookkeeping ones', else
// the table's.
func typeOf(types map[string]catalog.Type, name string) catalog.Type {
	for _, c := range dest.Bookkeeping() {
		if c.Name == name {
			return c.Type
		}
	}
	if t, ok := types[name]; ok {
		return t
	}
	return catalog.TypeString
}

// decodeCSV streams the rows of a CSV data file.
func decodeCSV(r io.Reader, types map[string]catalog.Type, fn func(map[string]any) bool) error {
	cr := csvReader{r: bufio.NewReaderSize(r, 1<<16)}
	header, _, err := cr.record()
	if err != nil {
		return err
	}
	header = append([]string(nil), header...)
	for line := 2; ; line++ {
		rec, quoted, err := cr.record()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", line, err)
		}
		if len(rec) != len(header) {
			return fmt.Errorf("record %d has %d fields for %d columns", line, len(rec), len(header))
		}
		m := make(map[string]any, len(header))
		for i, name := range header {
			v, err := parseCell(typeOf(types, name), name, rec[i], quoted[i])
			if err != nil {
				return fmt.Errorf("record %d column %s: %w", line, name, err)
			}
			m[name] = v
		}
		if !fn(m) {
			return nil
		}
	}
}

// csvReader reads the CSV encodeCSV writes, telling a quoted field from
// an unquoted one (encoding/csv cannot): fields split by commas, records
// by newlines, quoted fields with doubled quotes and any byte inside.
type csvReader struct {
	r      *bufio.Reader
	fields []string
	quoted []bool
	field  bytes.Buffer
}

// record reads the next record; io.EOF at the end of the input.
func (c *csvReader) record() ([]string, []bool, error) {
	c.fields, c.quoted = c.fields[:0], c.quoted[:0]
	b, err := c.r.ReadByte()
	if err != nil {
		return nil, nil, err
	}
	for {
		c.field.Reset()
		quoted := b == '"'
		if quoted {
			if b, err = c.quotedField(); err != nil {
				return nil, nil, err
			}
		} else {
			for b != ',' && b != '\n' {
				c.field.WriteByte(b)
				if b, err = c.r.ReadByte(); errors.Is(err, io.EOF) {
					b = '\n'
				} else if err != nil {
					return nil, nil, err
				}
			}
		}
		c.fields, c.quoted = append(c.fields, c.field.String()), append(c.quoted, quoted)
		if b == '\n' {
			return c.fields, c.quoted, nil
		}
		if b, err = c.r.ReadByte(); errors.Is(err, io.EOF) {
			b = '\n'
		} else if err != nil {
			return nil, nil, err
		}
	}
}

// quotedField reads a quoted field after its opening quote and returns
// the byte after its closing quote (a comma or a newline).
func (c *csvReader) quotedField() (byte, error) {
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("unterminated quoted field: %w", err)
		}
		if b != '"' {
			c.field.WriteByte(b)
			continue
		}
		b, err = c.r.ReadByte()
		switch {
		case errors.Is(err, io.EOF):
			return '\n', nil
		case err != nil:
			return 0, err
		case b == '"':
			c.field.WriteByte('"')
		case b == ',' || b == '\n':
			return b, nil
		default:
			return 0, fmt.Errorf("text after a closing quote")
		}
	}
}
