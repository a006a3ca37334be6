package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// CreateOptions configures one backup.
type CreateOptions struct {
	// Source is the replica; it must implement dest.Reader.
	Source dest.Destination
	// SourceURL names the replica in the manifest (redacted here).
	SourceURL string
	// Pipeline names the cursors saved with the rows and the chain of
	// incremental snapshots.
	Pipeline string
	// Dir is the target directory (see TargetDir).
	Dir string
	// Compression is Zstd (default) or Gzip.
	Compression string
	// Full makes a full snapshot even when an earlier one could be the
	// parent of an incremental one.
	Full bool
	// Streams, when set, backs up only these tables.
	Streams []string
	// Now is the clock (the snapshot's time and id); nil is time.Now.
	Now func() time.Time
	// Progress, when set, hears about every stream written.
	Progress func(s StreamManifest)
}

// Create writes one snapshot of the replica into the target and returns
// it. The first snapshot of a pipeline in a target is full, the next ones
// incremental against the latest complete one (unless Full). Nothing of a
// failed or killed Create looks like a snapshot.
func Create(ctx context.Context, opt CreateOptions) (*Snapshot, error) {
	rd, ok := opt.Source.(dest.Reader)
	if !ok {
		return nil, fmt.Errorf("the replica %s cannot be read back, so it cannot be backed up", dest.Redact(opt.SourceURL))
	}
	if opt.Pipeline == "" {
		return nil, errors.New("backup: no pipeline named")
	}
	switch opt.Compression {
	case "":
		opt.Compression = Zstd
	case Zstd, Gzip:
	default:
		return nil, fmt.Errorf("compression %q is not supported: use zstd or gzip", opt.Compression)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("backup target %s: %w (choose a directory you can write to)", opt.Dir, err)
	}
	lk, err := lockTarget(ctx, opt.Dir, dest.WaitForever)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	if err := removeIncomplete(opt.Dir); err != nil {
		return nil, fmt.Errorf("remove incomplete backups in %s: %w", opt.Dir, err)
	}
	var parent *Snapshot
	if !opt.Full {
		if parent, err = latest(opt.Dir, opt.Pipeline); err != nil {
			return nil, err
		}
	}
	// The cursors first: rows read after them are at least as new, and a
	// sync resumed from them re-applies what came later (newer wins).
	cursors, err := opt.Source.LoadState(ctx, opt.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("read the cursors of pipeline %s: %w", opt.Pipeline, err)
	}
	tables, err := rd.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the replica's tables: %w", err)
	}
	if len(opt.Streams) > 0 {
		var keep []string
		for _, s := range opt.Streams {
			if !slices.Contains(tables, s) {
				return nil, fmt.Errorf("stream %s is not in the replica %s (its tables: %s)", s, dest.Redact(opt.SourceURL), strings.Join(tables, ", "))
			}
			keep = append(keep, s)
		}
		tables = keep
	}

	created := now().UTC()
	id := created.Format("20060102T150405.000000Z")
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(opt.Dir, id)); errors.Is(err, os.ErrNotExist) {
			break
		}
		id = fmt.Sprintf("%s-%d", created.Format("20060102T150405.000000Z"), i)
	}
	tmp := filepath.Join(opt.Dir, tmpPrefix+id)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("backup target %s: %w", opt.Dir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m := Manifest{Format: FormatVersion, ID: id, Pipeline: opt.Pipeline, Created: created,
		Source: dest.Redact(opt.SourceURL), Compression: opt.Compression, Cursors: cursors}
	if m.Cursors == nil {
		m.Cursors = map[string]json.RawMessage{}
	}
	if parent != nil {
		m.Parent = parent.Manifest.ID
	}
	for _, table := range tables {
		var pidx map[string]string
		if parent != nil && parent.Manifest.Stream(table) != nil {
			if pidx, err = parent.index(table); err != nil {
				return nil, err
			}
		}
		sm, err := writeStream(ctx, rd, tmp, table, opt.Compression, pidx)
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", table, err)
		}
		m.Streams = append(m.Streams, *sm)
		if opt.Progress != nil {
			opt.Progress(*sm)
		}
	}
	var written []string
	for _, sm := range m.Streams {
		for _, f := range sm.Files {
			written = append(written, filepath.Join(tmp, f.Name))
		}
	}
	if err := syncFiles(ctx, written); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeSynced(filepath.Join(tmp, ManifestFile), b); err != nil {
		return nil, fmt.Errorf("write the manifest: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	final := filepath.Join(opt.Dir, id)
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("move the snapshot into place: %w", err)
	}
	done = true
	if err := syncDir(opt.Dir); err != nil {
		return nil, err
	}
	return &Snapshot{Dir: final, Manifest: m}, nil
}

// writeStream writes one table's files: every row whose hash differs from
// the parent's index (all of them without a parent), the index of every
// id, and the ids of the parent's index no longer there.
func writeStream(ctx context.Context, rd dest.Reader, dir, table, compression string, pidx map[string]string) (*StreamManifest, error) {
	if strings.ContainsAny(table, `/\`) || strings.HasPrefix(table, ".") {
		return nil, fmt.Errorf("table name %q cannot be a file name", table)
	}
	rowsName, idxName, remName := table+".rows.jsonl."+ext(compression), table+".index.tsv."+ext(compression), table+".removed.txt."+ext(compression)
	rows, err := createFile(filepath.Join(dir, rowsName), compression)
	if err != nil {
		return nil, err
	}
	defer rows.abort()
	idx, err := createFile(filepath.Join(dir, idxName), compression)
	if err != nil {
		return nil, err
	}
	defer idx.abort()
	cs := newColumnSet(table)
	sm := &StreamManifest{Name: table}
	var line bytes.Buffer
	var enc rowEncoder
	for row, err := range rd.Rows(ctx, table) {
		if err != nil {
			return nil, err
		}
		id, _ := row["id"].(string)
		if id == "" || strings.ContainsAny(id, "\t\n") {
			return nil, fmt.Errorf("a row without a usable id: %v", row["id"])
		}
		cs.see(row)
		b, h, err := enc.encode(row)
		if err != nil {
			return nil, fmt.Errorf("row %s: %w", id, err)
		}
		sm.Rows++
		line.Reset()
		line.WriteString(id)
		line.WriteByte('\t')
		line.WriteString(h)
		if err := idx.line(line.Bytes()); err != nil {
			return nil, err
		}
		if pidx != nil {
			old, had := pidx[id]
			delete(pidx, id)
			if had && old == h {
				continue
			}
		}
		if err := rows.line(b); err != nil {
			return nil, err
		}
		sm.Stored++
	}
	sm.Columns = cs.columns()
	f, err := rows.close(rowsName, KindRows)
	if err != nil {
		return nil, err
	}
	// Files without a record are left out (most tables of an account are
	// empty, or unchanged since the parent).
	if f.Records > 0 {
		sm.Files = append(sm.Files, f)
	} else if err := os.Remove(filepath.Join(dir, rowsName)); err != nil {
		return nil, err
	}
	if f, err = idx.close(idxName, KindIndex); err != nil {
		return nil, err
	}
	if f.Records > 0 {
		sm.Files = append(sm.Files, f)
	} else if err := os.Remove(filepath.Join(dir, idxName)); err != nil {
		return nil, err
	}
	if len(pidx) > 0 {
		rem, err := createFile(filepath.Join(dir, remName), compression)
		if err != nil {
			return nil, err
		}
		defer rem.abort()
		ids := make([]string, 0, len(pidx))
		for id := range pidx {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if err := rem.line([]byte(id)); err != nil {
				return nil, err
			}
		}
		if f, err = rem.close(remName, KindRemoved); err != nil {
			return nil, err
		}
		sm.Files = append(sm.Files, f)
		sm.Removed = int64(len(ids))
	}
	return sm, nil
}

func ext(compression string) string {
	if compression == Gzip {
		return "gz"
	}
	return "zst"
}

// index reads the id → row hash index of one stream of the snapshot.
func (s *Snapshot) index(stream string) (map[string]string, error) {
	sm := s.Manifest.Stream(stream)
	out := map[string]string{}
	if sm == nil {
		return out, nil
	}
	f := sm.File(KindIndex)
	if f == nil {
		if sm.Rows == 0 {
			return out, nil
		}
		return nil, fmt.Errorf("snapshot %s: stream %s has no index file", s.Manifest.ID, stream)
	}
	err := eachLine(filepath.Join(s.Dir, f.Name), s.Manifest.Compression, func(b []byte) error {
		id, h, ok := bytes.Cut(b, []byte{'\t'})
		if !ok {
			return fmt.Errorf("snapshot %s: %s: a line without a hash", s.Manifest.ID, f.Name)
		}
		out[string(id)] = string(h)
		return nil
	})
	return out, err
}

// writeSynced writes a new file and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
