package mysql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// errBulkFallback says a bulk load must be redone with plain upserts.
var errBulkFallback = errors.New("bulk load incomplete")

// bulkFallbacks counts batches whose bulk load was redone (for tests).
var bulkFallbacks atomic.Int64

var loadSeq atomic.Int64

// InsertNew inserts rows with LOAD DATA LOCAL INFILE from an in-memory
// tab-separated stream: the server neither parses a multi-megabyte INSERT
// nor binds its placeholders. LOAD DATA LOCAL skips duplicates and adjusts
// bad values with warnings instead of failing, so a load that did not
// insert every row untouched returns errBulkFallback (KindRetry): the core
// writes the batch again with upserts.
func (d *dialect) InsertNew(ctx context.Context, tx sqldest.Conn, rs *sqldest.RowSet) error {
	var buf bytes.Buffer
	var args []any
	for i := range rs.Rows {
		args = rs.Args(args[:0], i)
		for j, v := range args {
			if j > 0 {
				buf.WriteByte('\t')
			}
			tsvField(&buf, v)
		}
		buf.WriteByte('\n')
	}
	name := fmt.Sprintf("stripeline-%d", loadSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(buf.Bytes()) })
	defer mysql.DeregisterReaderHandler(name)
	cols := make([]string, 0, len(rs.Columns)+4)
	for _, c := range rs.Names() {
		cols = append(cols, quote(c))
	}
	n, err := tx.Exec(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE "+quote(rs.Table)+
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ("+strings.Join(cols, ", ")+")")
	if err != nil {
		return err
	}
	var warnings int64
	if err := sqldest.Each(ctx, tx, "SELECT @@warning_count", nil, func(v []any) { warnings, _ = v[0].(int64) }); err != nil {
		return err
	}
	if n != int64(len(rs.Rows)) || warnings != 0 {
		bulkFallbacks.Add(1)
		return errBulkFallback
	}
	return nil
}

// tsvField writes one value in LOAD DATA's default format: \N for NULL,
// backslash escapes for the backslash, tab, newline, carriage return and NUL.
func tsvField(buf *bytes.Buffer, v any) {
	var s string
	switch x := v.(type) {
	case nil:
		buf.WriteString(`\N`)
		return
	case string:
		s = x
	case json.RawMessage:
		s = string(x)
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
		return
	case float64:
		buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		return
	case bool:
		if x {
			buf.WriteByte('1')
		} else {
			buf.WriteByte('0')
		}
		return
	default:
		s = fmt.Sprint(x)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case 0:
			buf.WriteString(`\0`)
		default:
			buf.WriteByte(c)
		}
	}
}
