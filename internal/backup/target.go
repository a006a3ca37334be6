package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/filelock"
)

// tmpPrefix starts the name of a snapshot being written.
const tmpPrefix = ".tmp-"

// lockFile serialises the writers of one target (create, prune).
const lockFile = ".stripeline-backup.lock"

// ErrNoSnapshot is returned when a snapshot asked for is not there.
var ErrNoSnapshot = errors.New("no such snapshot")

// TargetDir turns a backup target (DIR or file://DIR) into a directory.
// Other schemes are an error naming the ones supported.
func TargetDir(target string) (string, error) {
	if target == "" {
		return "", errors.New("no backup target: give a directory, e.g. --to ./backups or --to file:///var/backups/stripeline")
	}
	if !strings.Contains(target, "://") {
		return target, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("backup target %q is not a URL or a directory", target)
	}
	switch u.Scheme {
	case "file":
		dir := u.Host + u.Path
		if u.Opaque != "" {
			dir = u.Opaque
		}
		if dir == "" {
			return "", fmt.Errorf("backup target %q names no directory: use file:///path/to/backups", target)
		}
		return dir, nil
	case "s3":
		return "", fmt.Errorf("backup target %q: S3 storage is not supported by this build; back up to a directory (DIR or file://DIR) and copy it to S3 with your own tools", target)
	default:
		return "", fmt.Errorf("backup target scheme %q is not supported: use a directory (DIR or file://DIR)", u.Scheme)
	}
}

// Snapshot is one complete snapshot in a target.
type Snapshot struct {
	Dir      string // the snapshot's own directory
	Manifest Manifest
}

// Entry is one row of List: a complete snapshot, or an incomplete one
// (a temporary directory left by a crash or a backup still running).
type Entry struct {
	ID         string    `json:"id"`
	Pipeline   string    `json:"pipeline,omitempty"`
	Created    time.Time `json:"created,omitzero"`
	Parent     string    `json:"parent,omitempty"`
	Kind       string    `json:"kind"` // full, incremental or incomplete
	Streams    int       `json:"streams"`
	Rows       int64     `json:"rows"`
	Stored     int64     `json:"stored"`
	Bytes      int64     `json:"bytes"`
	Incomplete bool      `json:"incomplete,omitempty"`
	Problem    string    `json:"problem,omitempty"`
}

// List lists the snapshots of a target directory, oldest first; a
// directory that does not exist lists nothing.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if de.Type()&os.ModeSymlink != 0 {
			// A snapshot linked in from elsewhere counts as one.
			if st, err := os.Stat(filepath.Join(dir, name)); err != nil || !st.IsDir() {
				continue
			}
		} else if !de.IsDir() {
			continue
		}
		if strings.HasPrefix(name, tmpPrefix) {
			out = append(out, Entry{ID: strings.TrimPrefix(name, tmpPrefix), Kind: "incomplete", Incomplete: true, Problem: "no manifest: a backup that crashed or is still running; it is removed by the next backup create"})
			continue
		}
		if strings.HasPrefix(name, ".") {
			continue
		}
		m, err := readManifest(filepath.Join(dir, name))
		if err != nil {
			out = append(out, Entry{ID: name, Kind: "incomplete", Incomplete: true, Problem: err.Error()})
			continue
		}
		e := Entry{ID: m.ID, Pipeline: m.Pipeline, Created: m.Created, Parent: m.Parent, Kind: "full", Streams: len(m.Streams)}
		if m.Incremental() {
			e.Kind = "incremental"
		}
		for _, s := range m.Streams {
			e.Rows += s.Rows
			e.Stored += s.Stored
			for _, f := range s.Files {
				e.Bytes += f.Bytes
			}
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func readManifest(snapDir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(snapDir, ManifestFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s has no %s: not a complete snapshot", snapDir, ManifestFile)
		}
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", snapDir, ManifestFile, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", snapDir, ManifestFile, err)
	}
	if filepath.Base(snapDir) != m.ID {
		return nil, fmt.Errorf("%s/%s: the manifest is of snapshot %s", snapDir, ManifestFile, m.ID)
	}
	return &m, nil
}

// Open opens a snapshot by reference: the path of its directory (or a
// file:// URL of it), or TARGET/latest for the newest complete snapshot of
// a target. A target itself is an error naming its snapshots.
func Open(ref string) (*Snapshot, error) {
	path, err := TargetDir(ref)
	if err != nil {
		return nil, err
	}
	path = filepath.Clean(path)
	if filepath.Base(path) == "latest" {
		target := filepath.Dir(path)
		s, err := latest(target, "")
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, fmt.Errorf("%s: %w in the target %s (make one: stripeline backup create --to %s)", ref, ErrNoSnapshot, target, target)
		}
		return s, nil
	}
	if _, err := os.Stat(filepath.Join(path, ManifestFile)); errors.Is(err, os.ErrNotExist) {
		if st, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w (see stripeline backup list --to DIR)", ref, ErrNoSnapshot)
		} else if st.IsDir() {
			if es, _ := List(path); len(es) > 0 {
				return nil, fmt.Errorf("%s is a backup target, not a snapshot: name one of its snapshots, e.g. %s (or %s), see stripeline backup list --to %s",
					ref, filepath.Join(path, es[len(es)-1].ID), filepath.Join(path, "latest"), path)
			}
		}
		if strings.HasPrefix(filepath.Base(path), tmpPrefix) {
			return nil, fmt.Errorf("snapshot %s is incomplete (its backup did not finish): use another one", ref)
		}
		return nil, fmt.Errorf("snapshot %s: %w: %s has no %s", ref, ErrNoSnapshot, path, ManifestFile)
	}
	m, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Dir: path, Manifest: *m}, nil
}

// latest returns the newest complete snapshot of a pipeline ("" any) in
// a target, or nil.
func latest(dir, pipeline string) (*Snapshot, error) {
	es, err := List(dir)
	if err != nil {
		return nil, err
	}
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if e.Incomplete || pipeline != "" && e.Pipeline != pipeline {
			continue
		}
		m, err := readManifest(filepath.Join(dir, e.ID))
		if err != nil {
			return nil, err
		}
		return &Snapshot{Dir: filepath.Join(dir, e.ID), Manifest: *m}, nil
	}
	return nil, nil
}

// Parent opens the snapshot this one depends on (nil for a full one).
func (s *Snapshot) Parent() (*Snapshot, error) {
	if s.Manifest.Parent == "" {
		return nil, nil
	}
	dir := filepath.Join(filepath.Dir(s.Dir), s.Manifest.Parent)
	m, err := readManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s depends on %s, which cannot be read: %w", s.Manifest.ID, s.Manifest.Parent, err)
	}
	return &Snapshot{Dir: dir, Manifest: *m}, nil
}

// Chain is the snapshot and its ancestors, newest first.
func (s *Snapshot) Chain() ([]*Snapshot, error) {
	out := []*Snapshot{s}
	seen := map[string]bool{s.Manifest.ID: true}
	for cur := s; ; {
		p, err := cur.Parent()
		if err != nil {
			return nil, err
		}
		if p == nil {
			return out, nil
		}
		if seen[p.Manifest.ID] {
			return nil, fmt.Errorf("snapshot %s: its parents loop at %s", s.Manifest.ID, p.Manifest.ID)
		}
		seen[p.Manifest.ID] = true
		out = append(out, p)
		cur = p
	}
}

// lockTarget takes the target's writer lock: one create or prune at a
// time, so that the temporary directories found are dead ones.
func lockTarget(ctx context.Context, dir string, wait time.Duration) (dest.Lock, error) {
	host, _ := os.Hostname()
	l, err := filelock.Lock(ctx, filepath.Join(dir, lockFile), dest.LockRequest{
		Pipeline: "backup", Wait: wait,
		Holder: dest.Holder{Pipeline: "backup", Host: host, PID: os.Getpid(), Since: time.Now().UTC()},
	})
	if err != nil {
		var le *dest.LockedError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("another backup or prune is writing to %s (%s): wait for it to finish", dir, le.Situation())
		}
		return nil, fmt.Errorf("lock backup target %s: %w", dir, err)
	}
	return l, nil
}

// removeIncomplete removes the temporary directories crashed backups
// left; the caller holds the target lock.
func removeIncomplete(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.IsDir() && strings.HasPrefix(de.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
