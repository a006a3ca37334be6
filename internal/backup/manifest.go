// Package backup keeps self-contained snapshots of a replica and puts them
// back: `stripeline backup create|list|verify|prune`, `stripeline diff` and
// `stripeline restore`.
//
// A backup target is a directory (DIR or file://DIR). Each snapshot is one
// sub-directory named by its id, holding per stream a zstd- (or gzip-)
// compressed JSONL file of rows (the replica's columns and bookkeeping
// fields, one object a line), an index of every id with the hash of its
// row, the ids removed since the parent snapshot, and manifest.json: the
// columns and types, row counts, the sha256 of every file, the pipeline's
// cursors and the parent. The first snapshot of a pipeline is full; the
// next ones store only the rows whose content changed and the ids removed
// since the latest complete snapshot of the same pipeline, chained to it by
// Manifest.Parent; reads resolve the chain.
//
// A snapshot is written into a hidden temporary directory, every file
// fsynced, the manifest last, then renamed into place: a crash leaves only
// a ".tmp-…" directory that List reports as incomplete and the next Create
// removes, never a snapshot that looks complete.
package backup

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// FormatVersion is the version of the snapshot layout a manifest describes.
const FormatVersion = 1

// ManifestFile is the name of a snapshot's manifest, written last.
const ManifestFile = "manifest.json"

// Compressions of the data files.
const (
	Zstd = "zstd"
	Gzip = "gzip"
)

// File kinds of a stream in a snapshot.
const (
	KindRows    = "rows"    // JSONL rows stored by this snapshot
	KindRemoved = "removed" // ids removed since the parent, one a line
	KindIndex   = "index"   // every id of the resolved snapshot and its row's hash
)

// Manifest describes one snapshot.
type Manifest struct {
	Format   int       `json:"format"`
	ID       string    `json:"id"`
	Pipeline string    `json:"pipeline"`
	Created  time.Time `json:"created"`
	// Parent is the id of the snapshot this one stores changes against, or
	// "" for a full snapshot.
	Parent string `json:"parent,omitempty"`
	// Source is the replica's URL, its password redacted.
	Source      string `json:"source"`
	Compression string `json:"compression"`
	// Cursors are the pipeline's saved cursors by stream, read before the
	// rows: a sync resumed from them re-applies whatever came later.
	Cursors map[string]json.RawMessage `json:"cursors"`
	Streams []StreamManifest           `json:"streams"`
}

// StreamManifest is one stream (table) of a snapshot.
type StreamManifest struct {
	Name string `json:"name"`
	// Columns are the table's columns with their types, bookkeeping ones
	// included, as far as the rows showed them.
	Columns []dest.Column `json:"columns"`
	// Rows is the number of rows of the resolved snapshot (rows flagged
	// deleted included), Stored how many this snapshot holds itself and
	// Removed how many ids it removes from its parent's.
	Rows    int64  `json:"rows"`
	Stored  int64  `json:"stored"`
	Removed int64  `json:"removed"`
	Files   []File `json:"files"`
}

// File is one data file of a snapshot.
type File struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	SHA256  string `json:"sha256"`
	Bytes   int64  `json:"bytes"`
	Records int64  `json:"records"`
}

// Stream returns the manifest of one stream, or nil.
func (m *Manifest) Stream(name string) *StreamManifest {
	for i := range m.Streams {
		if m.Streams[i].Name == name {
			return &m.Streams[i]
		}
	}
	return nil
}

// File returns the file of one kind, or nil.
func (s *StreamManifest) File(kind string) *File {
	for i := range s.Files {
		if s.Files[i].Kind == kind {
			return &s.Files[i]
		}
	}
	return nil
}

// Incremental reports whether the snapshot stores changes against a parent.
func (m *Manifest) Incremental() bool { return m.Parent != "" }

func (m *Manifest) check() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("manifest format %d is not supported (this stripeline reads format %d)", m.Format, FormatVersion)
	}
	if m.ID == "" || m.Pipeline == "" {
		return fmt.Errorf("manifest has no id or pipeline")
	}
	switch m.Compression {
	case Zstd, Gzip:
	default:
		return fmt.Errorf("manifest compression %q is not supported", m.Compression)
	}
	return nil
}
