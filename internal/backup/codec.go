package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"

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
		zw, err := getEncoder()
		if err != nil {
			f.Close()
			return nil, err
		}
		zw.Reset(fw.count)
		fw.comp = &pooledEncoder{zw}
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

// close flushes and closes the file and describes it; the caller fsyncs
// it (syncFiles) before anything depends on it.
func (w *fileWriter) close(name, kind string) (File, error) {
	err := w.bw.Flush()
	if err == nil {
		err = w.comp.Close()
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
		zr, err := getDecoder()
		if err == nil {
			err = zr.Reset(bufio.NewReader(f))
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = &pooledDecoder{zr}
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

// rowEncoder writes rows as one JSON object each, keys sorted, and hashes
// their content on the way: every column but the time of the write, so a
// row rewritten unchanged is not a change. One encoder serves one stream.
type rowEncoder struct {
	buf  bytes.Buffer
	keys []string
}

// encode returns the row's line (valid until the next call) and its hash.
func (e *rowEncoder) encode(row map[string]any) ([]byte, string, error) {
	e.keys = e.keys[:0]
	for k := range row {
		e.keys = append(e.keys, k)
	}
	sort.Strings(e.keys)
	e.buf.Reset()
	h := sha256.New()
	e.buf.WriteByte('{')
	for i, k := range e.keys {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		start := e.buf.Len()
		if err := writeJSON(&e.buf, k); err != nil {
			return nil, "", err
		}
		e.buf.WriteByte(':')
		if err := writeJSON(&e.buf, row[k]); err != nil {
			return nil, "", fmt.Errorf("field %s: %w", k, err)
		}
		if k != dest.ColSyncedAt {
			h.Write(e.buf.Bytes()[start:])
			h.Write([]byte{0})
		}
	}
	e.buf.WriteByte('}')
	sum := h.Sum(nil)
	return e.buf.Bytes(), hex.EncodeToString(sum[:16]), nil
}

// writeJSON appends one value; JSON columns are written as they are when
// already on one line (Stripe's bodies are indented: those are compacted).
func writeJSON(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
		return nil
	case json.RawMessage:
		if len(x) == 0 {
			buf.WriteString("null")
			return nil
		}
		if !bytes.ContainsAny(x, "\n\r") {
			buf.Write(x)
			return nil
		}
		return json.Compact(buf, x)
	case string:
		b, err := json.Marshal(x)
		buf.Write(b)
		return err
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
		return nil
	case bool:
		buf.WriteString(strconv.FormatBool(x))
		return nil
	default:
		b, err := json.Marshal(x)
		buf.Write(b)
		return err
	}
}

// decodeRow reads one JSONL row back into the contract's value types by
// the columns' types. The line was written by rowEncoder and its file's
// checksum is known, so it is walked with gjson rather than validated and
// decoded by encoding/json.
func decodeRow(line []byte, types map[string]catalog.Type) (map[string]any, error) {
	if !gjson.ValidBytes(line) {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]any{}
	var err error
	gjson.ParseBytes(line).ForEach(func(k, v gjson.Result) bool {
		var val any
		if val, err = decodeValue(types[k.Str], v); err != nil {
			err = fmt.Errorf("field %s: %w", k.Str, err)
			return false
		}
		out[k.Str] = val
		return true
	})
	return out, err
}

func decodeValue(t catalog.Type, v gjson.Result) (any, error) {
	if v.Type == gjson.Null {
		return nil, nil
	}
	switch t {
	case catalog.TypeInteger:
		return strconv.ParseInt(v.Raw, 10, 64)
	case catalog.TypeNumber:
		return strconv.ParseFloat(v.Raw, 64)
	case catalog.TypeBoolean:
		return strconv.ParseBool(v.Raw)
	case catalog.TypeJSON:
		return json.RawMessage(v.Raw), nil
	default:
		if v.Type != gjson.String {
			return nil, fmt.Errorf("expected a string, got %s", v.Raw)
		}
		return v.Str, nil
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

// zstd encoders and decoders hold megabytes of tables and buffers: a
// snapshot has three files per stream, so they are reused, not made per
// file.
var (
	encoders sync.Pool
	decoders sync.Pool
)

func getEncoder() (*zstd.Encoder, error) {
	if e, ok := encoders.Get().(*zstd.Encoder); ok {
		return e, nil
	}
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
}

func getDecoder() (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
}

// pooledEncoder returns its encoder to the pool on Close.
type pooledEncoder struct{ e *zstd.Encoder }

func (p *pooledEncoder) Write(b []byte) (int, error) { return p.e.Write(b) }

func (p *pooledEncoder) Close() error {
	err := p.e.Close()
	p.e.Reset(nil)
	encoders.Put(p.e)
	return err
}

// pooledDecoder returns its decoder to the pool on Close.
type pooledDecoder struct{ d *zstd.Decoder }

func (p *pooledDecoder) Read(b []byte) (int, error) { return p.d.Read(b) }

func (p *pooledDecoder) Close() error {
	if p.d == nil {
		return nil
	}
	_ = p.d.Reset(nil)
	decoders.Put(p.d)
	p.d = nil
	return nil
}

// syncFiles fsyncs files side by side: a snapshot has a few files per
// table, and one fsync after the other would make a backup of a hundred
// small tables wait on the disk for seconds.
func syncFiles(ctx context.Context, paths []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, p := range paths {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return fmt.Errorf("fsync %s: %w", p, err)
			}
			return f.Close()
		})
	}
	return g.Wait()
}
