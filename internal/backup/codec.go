package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// fileWriter writes one compressed data file, hashing what reaches the
// disk; Close fsyncs it.
type fileWriter struct {
	f     *os.File
	sum   hash.Hash
	count *countWriter
	comp  io.WriteCloser
	bw    *bufio.Writer
	n     int64 // records
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func createFile(path, compression string) (*fileWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fw := &fileWriter{f: f, sum: sha256.New()}
	fw.count = &countWriter{w: io.MultiWriter(f, fw.sum)}
	switch compression {
	case Gzip:
		fw.comp = gzip.NewWriter(fw.count)
	default:
		zw, err := zstd.NewWriter(fw.count, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, err
		}
		fw.comp = zw
	}
	fw.bw = bufio.NewWriterSize(fw.comp, 64<<10)
	return fw, nil
}

// line writes one record (a line without its newline).
func (w *fileWriter) line(b []byte) error {
	w.n++
	if _, err := w.bw.Write(b); err != nil {
		return err
	}
	return w.bw.WriteByte('\n')
}

// close flushes, fsyncs and closes the file and describes it.
func (w *fileWriter) close(name, kind string) (File, error) {
	err := w.bw.Flush()
	if err == nil {
		err = w.comp.Close()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Kind: kind, SHA256: hex.EncodeToString(w.sum.Sum(nil)), Bytes: w.count.n, Records: w.n}, nil
}

// abort closes the file without caring for its content.
func (w *fileWriter) abort() { w.f.Close() }

// openFile opens a compressed data file for reading its lines.
func openFile(path, compression string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var r io.ReadCloser
	switch compression {
	case Gzip:
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = gz
	default:
		zr, err := zstd.NewReader(bufio.NewReader(f), zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr.IOReadCloser()
	}
	return &stackedCloser{ReadCloser: r, f: f}, nil
}

type stackedCloser struct {
	io.ReadCloser
	f *os.File
}

func (s *stackedCloser) Close() error {
	s.ReadCloser.Close()
	return s.f.Close()
}

// eachLine calls fn with each line of a data file (the slice is reused).
func eachLine(path, compression string, fn func([]byte) error) error {
	r, err := openFile(path, compression)
	if err != nil {
		return err
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// encodeRow is a row as one JSON object, keys sorted (encoding/json sorts
// map keys and compacts raw JSON).
func encodeRow(row map[string]any) ([]byte, error) {
	return json.Marshal(row)
}

// rowHash is the hash of a row's content: every column but the time of
// its write, so a row re-written unchanged is not a change.
func rowHash(row map[string]any) (string, error) {
	synced, had := row[dest.ColSyncedAt]
	if had {
		delete(row, dest.ColSyncedAt)
	}
	b, err := json.Marshal(row)
	if had {
		row[dest.ColSyncedAt] = synced
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// decodeRow reads one JSONL row back into the contract's value types by
// the columns' types.
func decodeRow(line []byte, types map[string]catalog.Type) (map[string]any, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(obj))
	for k, raw := range obj {
		v, err := decodeValue(types[k], raw)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func decodeValue(t catalog.Type, raw json.RawMessage) (any, error) {
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
		return json.RawMessage(bytes.Clone(raw)), nil
	default:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// columnSet gathers the columns rows show, typed by the catalog where it
// knows them and by the first value seen otherwise.
type columnSet struct {
	known map[string]catalog.Type
	types map[string]catalog.Type
}

func newColumnSet(stream string) *columnSet {
	cs := &columnSet{known: map[string]catalog.Type{}, types: map[string]catalog.Type{}}
	if s, ok := catalog.Lookup(stream); ok {
		for _, c := range s.Columns {
			cs.known[c.Name] = c.Type
		}
	}
	for _, c := range dest.Bookkeeping() {
		cs.known[c.Name] = c.Type
	}
	return cs
}

func (cs *columnSet) see(row map[string]any) {
	for k, v := range row {
		if t, ok := cs.types[k]; ok && (t != "" || v == nil) {
			continue
		}
		if t, ok := cs.known[k]; ok {
			cs.types[k] = t
			continue
		}
		cs.types[k] = typeOfValue(v)
	}
}

func typeOfValue(v any) catalog.Type {
	switch v.(type) {
	case nil:
		return "" // not known yet
	case int64, int, int32:
		return catalog.TypeInteger
	case float64, float32:
		return catalog.TypeNumber
	case bool:
		return catalog.TypeBoolean
	case json.RawMessage:
		return catalog.TypeJSON
	default:
		return catalog.TypeString
	}
}

// columns lists them: id first, then the object's fields by name, then the
// bookkeeping ones.
func (cs *columnSet) columns() []dest.Column {
	var own, bk []dest.Column
	isBK := map[string]bool{}
	for _, c := range dest.Bookkeeping() {
		isBK[c.Name] = true
	}
	for name, t := range cs.types {
		if t == "" {
			t = catalog.TypeString
		}
		c := dest.Column{Name: name, Type: t}
		if isBK[name] {
			bk = append(bk, c)
		} else {
			own = append(own, c)
		}
	}
	sort.Slice(own, func(i, j int) bool {
		if (own[i].Name == "id") != (own[j].Name == "id") {
			return own[i].Name == "id"
		}
		return own[i].Name < own[j].Name
	})
	sort.Slice(bk, func(i, j int) bool { return bk[i].Name < bk[j].Name })
	return append(own, bk...)
}

func typesOf(cols []dest.Column) map[string]catalog.Type {
	m := make(map[string]catalog.Type, len(cols))
	for _, c := range cols {
		m[c.Name] = c.Type
	}
	return m
}

type sum struct{ h hash.Hash }

func newSum() *sum { return &sum{h: sha256.New()} }

func (s *sum) Write(p []byte) (int, error) { return s.h.Write(p) }

func (s *sum) hex() string { return hex.EncodeToString(s.h.Sum(nil)) }

func copyTo(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }
