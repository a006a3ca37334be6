package backup

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// Streams lists the streams of the snapshot, sorted.
func (s *Snapshot) Streams() []string {
	out := make([]string, 0, len(s.Manifest.Streams))
	for _, sm := range s.Manifest.Streams {
		out = append(out, sm.Name)
	}
	sort.Strings(out)
	return out
}

// Columns are the columns of a stream over the snapshot's chain (a column
// seen in an older snapshot stays), in the newest snapshot's order first.
func (s *Snapshot) Columns(stream string) ([]dest.Column, error) {
	chain, err := s.Chain()
	if err != nil {
		return nil, err
	}
	var out []dest.Column
	seen := map[string]bool{}
	for _, snap := range chain {
		sm := snap.Manifest.Stream(stream)
		if sm == nil {
			break
		}
		for _, c := range sm.Columns {
			if !seen[c.Name] {
				seen[c.Name] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// Rows streams the rows of one stream as of the snapshot, resolving the
// chain: newest snapshot first, a row stored by a newer snapshot (or an id
// it removed) hides the older ones. Only the ids seen are held, never the
// rows. Values are of the contract's types (dest.Reader's).
func (s *Snapshot) Rows(ctx context.Context, stream string) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		if s.Manifest.Stream(stream) == nil {
			yield(nil, fmt.Errorf("snapshot %s has no stream %s: %w", s.Manifest.ID, stream, dest.ErrNoTable))
			return
		}
		chain, err := s.Chain()
		if err != nil {
			yield(nil, err)
			return
		}
		seen := map[string]struct{}{}
		stop := errors.New("stop")
		for _, snap := range chain {
			sm := snap.Manifest.Stream(stream)
			if sm == nil {
				break // the stream is newer than this snapshot: stored whole above
			}
			if f := sm.File(KindRemoved); f != nil {
				err := eachLine(filepath.Join(snap.Dir, f.Name), snap.Manifest.Compression, func(b []byte) error {
					seen[string(b)] = struct{}{}
					return nil
				})
				if err != nil {
					yield(nil, err)
					return
				}
			}
			f := sm.File(KindRows)
			if f == nil {
				if sm.Stored > 0 {
					yield(nil, fmt.Errorf("snapshot %s: stream %s has no rows file", snap.Manifest.ID, stream))
					return
				}
				if snap.Manifest.Parent == "" {
					return
				}
				continue // nothing stored at this level
			}
			types := typesOf(sm.Columns)
			var fresh []string
			err := eachLine(filepath.Join(snap.Dir, f.Name), snap.Manifest.Compression, func(b []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				row, err := decodeRow(b, types)
				if err != nil {
					return fmt.Errorf("snapshot %s: %s: %w", snap.Manifest.ID, f.Name, err)
				}
				id, _ := row["id"].(string)
				if _, hidden := seen[id]; hidden {
					return nil
				}
				fresh = append(fresh, id)
				if !yield(row, nil) {
					return stop
				}
				return nil
			})
			if errors.Is(err, stop) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			// A snapshot stores each id once: hide them from the older
			// ones only after reading it whole.
			for _, id := range fresh {
				seen[id] = struct{}{}
			}
			if snap.Manifest.Parent == "" {
				return
			}
		}
	}
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Snapshot string `json:"snapshot"`
	File     string `json:"file,omitempty"`
	Problem  string `json:"problem"`
}

// Verify checks the snapshot and every snapshot it depends on: each file
// is there with the size and sha256 its manifest records, decompresses,
// and holds the number of records recorded. It returns the problems found
// (none: the snapshot can be restored).
func (s *Snapshot) Verify(ctx context.Context) ([]Problem, error) {
	chain, err := s.Chain()
	if err != nil {
		return []Problem{{Snapshot: s.Manifest.ID, Problem: err.Error()}}, nil
	}
	var out []Problem
	for _, snap := range chain {
		for _, sm := range snap.Manifest.Streams {
			for _, f := range sm.Files {
				if err := ctx.Err(); err != nil {
					return out, err
				}
				if p := verifyFile(snap, f); p != "" {
					out = append(out, Problem{Snapshot: snap.Manifest.ID, File: f.Name, Problem: p})
				}
			}
		}
	}
	return out, nil
}

func verifyFile(snap *Snapshot, f File) string {
	path := filepath.Join(snap.Dir, f.Name)
	fh, err := os.Open(path)
	if err != nil {
		return "missing: " + err.Error()
	}
	sum := newSum()
	n, err := copyTo(sum, fh)
	fh.Close()
	if err != nil {
		return "unreadable: " + err.Error()
	}
	if n != f.Bytes {
		return fmt.Sprintf("%d bytes, the manifest records %d", n, f.Bytes)
	}
	if got := sum.hex(); got != f.SHA256 {
		return fmt.Sprintf("sha256 %s, the manifest records %s", got, f.SHA256)
	}
	var records int64
	if err := eachLine(path, snap.Manifest.Compression, func([]byte) error { records++; return nil }); err != nil {
		return "does not decompress: " + err.Error()
	}
	if records != f.Records {
		return fmt.Sprintf("%d records, the manifest records %d", records, f.Records)
	}
	return ""
}

// PruneOptions is a retention policy: keep the newest Keep snapshots of
// each pipeline (0: no limit by count) and those younger than MaxAge (0:
// no limit by age). A snapshot that a kept one depends on is kept too.
type PruneOptions struct {
	Keep     int
	MaxAge   time.Duration
	Pipeline string // only this pipeline's snapshots ("" all)
	DryRun   bool
	Now      func() time.Time
}

// Prune applies a retention policy to a target and returns the ids of
// the snapshots it removed (would remove, in a dry run). Incomplete
// snapshots left by crashed backups are removed too.
func Prune(ctx context.Context, dir string, opt PruneOptions) ([]string, error) {
	if opt.Keep <= 0 && opt.MaxAge <= 0 {
		return nil, errors.New("no retention policy: give --keep N and/or --max-age DURATION")
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	lk, err := lockTarget(ctx, dir, dest.WaitForever)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	es, err := List(dir)
	if err != nil {
		return nil, err
	}
	parents := map[string]string{}
	byPipeline := map[string][]Entry{}
	for _, e := range es {
		if e.Incomplete {
			continue
		}
		parents[e.ID] = e.Parent
		byPipeline[e.Pipeline] = append(byPipeline[e.Pipeline], e)
	}
	keep := map[string]bool{}
	for p, list := range byPipeline {
		for i, e := range list {
			if opt.Pipeline != "" && p != opt.Pipeline {
				keep[e.ID] = true
				continue
			}
			young := opt.MaxAge > 0 && now().Sub(e.Created) < opt.MaxAge
			recent := opt.Keep > 0 && i >= len(list)-opt.Keep
			// With both limits a snapshot goes when it is out of either.
			switch {
			case opt.Keep > 0 && opt.MaxAge > 0:
				keep[e.ID] = young && recent
			default:
				keep[e.ID] = young || recent
			}
			if i == len(list)-1 {
				keep[e.ID] = true // the newest one always stays
			}
		}
	}
	for id := range keep {
		if !keep[id] {
			continue
		}
		for p := parents[id]; p != "" && !keep[p]; p = parents[p] {
			keep[p] = true
		}
	}
	var removed []string
	for _, e := range es {
		if e.Incomplete || keep[e.ID] {
			continue
		}
		removed = append(removed, e.ID)
		if !opt.DryRun {
			if err := os.RemoveAll(filepath.Join(dir, e.ID)); err != nil {
				return removed, fmt.Errorf("remove snapshot %s: %w", e.ID, err)
			}
		}
	}
	if !opt.DryRun {
		if err := removeIncomplete(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
