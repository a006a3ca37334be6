package backup_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// fixture is an emulator with a replica of it.
type fixture struct {
	emu    *emulator.Emulator
	client *stripe.Client
	dst    dest.Destination
	url    string
}

func newFixture(t *testing.T, objects int, destURL string) *fixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 11, Objects: objects, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client, err := stripe.New(stripe.Config{Key: "sk_test_backup", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	if destURL == "" {
		destURL = "sqlite://" + filepath.Join(t.TempDir(), "replica.db")
	}
	dst, err := dest.Open(context.Background(), destURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	f := &fixture{emu: emu, client: client, dst: dst, url: destURL}
	f.sync(t)
	return f
}

func (f *fixture) sync(t *testing.T) {
	t.Helper()
	// A few streams, a child one among them, keep the test quick.
	streams := []string{"customers", "products", "prices", "coupons", "invoices", "subscriptions"}
	if _, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: f.dst, Pipeline: "main", Streams: streams}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) backup(t *testing.T, dir string, full bool) *backup.Snapshot {
	t.Helper()
	s, err := backup.Create(context.Background(), backup.CreateOptions{Source: f.dst, SourceURL: f.url, Pipeline: "main", Dir: dir, Full: full})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func diff(t *testing.T, a, b backup.Source, streams ...string) *backup.DiffResult {
	t.Helper()
	r, err := backup.Diff(context.Background(), a, b, backup.DiffOptions{Streams: streams})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func counts(r *backup.DiffResult) map[string][3]int {
	out := map[string][3]int{}
	for _, s := range r.Streams {
		if s.Added+s.Changed+s.Removed > 0 {
			out[s.Stream] = [3]int{s.Added, s.Changed, s.Removed}
		}
	}
	return out
}

// TestIncrementalChainResolves: a full backup, changes, an incremental
// one that stores only the changes, and both resolve to what the replica
// held at their time; the diff of the two lists exactly the changes.
func TestIncrementalChainResolves(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 300, "")
	dir := t.TempDir()
	s1 := f.backup(t, dir, false)
	if s1.Manifest.Incremental() {
		t.Fatal("the first backup is incremental")
	}
	if d := diff(t, backup.SnapshotSource{S: s1}, backup.ReplicaSource{R: f.dst.(dest.Reader), URL: f.url}); !d.Empty() {
		t.Fatalf("full snapshot differs from its replica: %v", counts(d))
	}
	cursors, _ := f.dst.LoadState(context.Background(), "main")
	if !cmp.Equal(s1.Manifest.Cursors, cursors) || len(cursors) == 0 {
		t.Fatalf("manifest cursors %v, replica %v", s1.Manifest.Cursors, cursors)
	}

	if err := f.emu.Mutate("", "customers", 2, 4, 3); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	s2 := f.backup(t, dir, false)
	if s2.Manifest.Parent != s1.Manifest.ID {
		t.Fatalf("parent %q, want %q", s2.Manifest.Parent, s1.Manifest.ID)
	}
	cus1, cus2 := s1.Manifest.Stream("customers"), s2.Manifest.Stream("customers")
	// 2 new rows, up to 4 updated and 3 flagged deleted: every other row
	// is left to the parent.
	if cus2.Stored > 9 || cus2.Stored < 5 || cus2.Rows != cus1.Rows+2 {
		t.Fatalf("incremental customers: stored %d rows of %d (parent %d)", cus2.Stored, cus2.Rows, cus1.Rows)
	}
	if p := s2.Manifest.Stream("products"); p.Stored != 0 {
		t.Fatalf("unchanged products stored %d rows", p.Stored)
	}
	if d := diff(t, backup.SnapshotSource{S: s2}, backup.ReplicaSource{R: f.dst.(dest.Reader), URL: f.url}); !d.Empty() {
		t.Fatalf("incremental snapshot differs from its replica: %v", counts(d))
	}
	d := diff(t, backup.SnapshotSource{S: s1}, backup.SnapshotSource{S: s2})
	c := counts(d)["customers"]
	if c[0] != 2 || c[2] != 3 || c[1] < 1 || c[1] > 4 {
		t.Fatalf("diff of the two snapshots: %v", counts(d))
	}
	for _, s := range d.Streams {
		for _, o := range s.Objects {
			if o.Change != backup.Changed {
				continue
			}
			for _, fd := range o.Fields {
				if !strings.HasPrefix(fd.Field, "metadata.") || !fd.Updatable {
					t.Errorf("%s %s: field %s changed (%s → %s), want only metadata", s.Stream, o.ID, fd.Field, fd.A, fd.B)
				}
			}
		}
	}
	// A third, unchanged backup stores nothing.
	s3 := f.backup(t, dir, false)
	for _, sm := range s3.Manifest.Streams {
		if sm.Stored != 0 || sm.Removed != 0 {
			t.Errorf("unchanged backup stored %d and removed %d rows of %s", sm.Stored, sm.Removed, sm.Name)
		}
	}
	for _, s := range []*backup.Snapshot{s1, s2, s3} {
		if probs, err := s.Verify(context.Background()); err != nil || len(probs) > 0 {
			t.Fatalf("verify %s: %v %v", s.Manifest.ID, probs, err)
		}
	}
}

// TestRestoreIntoReplica rebuilds a replica from an incremental snapshot:
// the same rows and cursors; a second restore changes nothing.
func TestRestoreIntoReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 200, "")
	dir := t.TempDir()
	f.backup(t, dir, false)
	if err := f.emu.Mutate("", "customers", 1, 2, 2); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	snap, err := backup.Open(filepath.Join(dir, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"sqlite://" + filepath.Join(t.TempDir(), "restored.db"), "jsonl://" + t.TempDir()} {
		into, err := dest.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := snap.RestoreInto(context.Background(), backup.RestoreOptions{Into: into}); err != nil {
				t.Fatal(err)
			}
			if d := diff(t, backup.SnapshotSource{S: snap}, backup.ReplicaSource{R: into.(dest.Reader), URL: u}); !d.Empty() {
				t.Fatalf("%s restore %d differs from the snapshot: %v", u, i, counts(d))
			}
		}
		got, _ := into.LoadState(context.Background(), "main")
		if !cmp.Equal(got, snap.Manifest.Cursors) {
			t.Fatalf("%s cursors %v, want %v", u, got, snap.Manifest.Cursors)
		}
		into.Close()
	}
}

// TestListVerifyPrune: an interrupted backup is listed incomplete and is
// no snapshot; a corrupted file fails verify; retention never removes a
// snapshot a kept one depends on.
func TestListVerifyPrune(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100, "")
	dir := t.TempDir()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(full bool) *backup.Snapshot {
		s, err := backup.Create(context.Background(), backup.CreateOptions{Source: f.dst, SourceURL: f.url, Pipeline: "main", Dir: dir, Full: full, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(24 * time.Hour)
		return s
	}
	full1, inc1, full2, inc2 := mk(false), mk(false), mk(true), mk(false)
	if inc1.Manifest.Parent != full1.Manifest.ID || full2.Manifest.Parent != "" || inc2.Manifest.Parent != full2.Manifest.ID {
		t.Fatal("unexpected chain")
	}
	// What a killed backup leaves.
	if err := os.MkdirAll(filepath.Join(dir, ".tmp-20261201T000000.000000Z"), 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := backup.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var complete, incomplete int
	for _, e := range es {
		if e.Incomplete {
			incomplete++
		} else {
			complete++
		}
	}
	if complete != 4 || incomplete != 1 {
		t.Fatalf("list: %+v", es)
	}
	if _, err := backup.Open(filepath.Join(dir, ".tmp-20261201T000000.000000Z")); err == nil {
		t.Fatal("an incomplete snapshot opened")
	}
	if _, err := backup.Open(dir); err == nil || !strings.Contains(err.Error(), "is a backup target, not a snapshot") {
		t.Fatalf("open of the target: %v", err)
	}

	// Corrupt one stored file of the first full snapshot: it and the
	// incremental one on top fail verify, the second chain does not.
	sm := full1.Manifest.Stream("customers")
	p := filepath.Join(full1.Dir, sm.File(backup.KindRows).Name)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    *backup.Snapshot
		fail bool
	}{{full1, true}, {inc1, true}, {full2, false}, {inc2, false}} {
		probs, err := c.s.Verify(context.Background())
		if err != nil || (len(probs) > 0) != c.fail {
			t.Errorf("verify %s: %v %v, want failure %v", c.s.Manifest.ID, probs, err, c.fail)
		}
	}

	// Keep 1: the newest (inc2) stays and so does full2, its parent.
	removed, err := backup.Prune(context.Background(), dir, backup.PruneOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{full1.Manifest.ID, inc1.Manifest.ID}; !cmp.Equal(removed, want) {
		t.Fatalf("pruned %v, want %v", removed, want)
	}
	es, _ = backup.List(dir)
	var left []string
	for _, e := range es {
		left = append(left, e.ID)
	}
	if want := []string{full2.Manifest.ID, inc2.Manifest.ID}; !cmp.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	if _, err := inc2.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	b, _ = os.ReadFile(filepath.Join(inc2.Dir, backup.ManifestFile))
	if err := json.Unmarshal(b, &m); err != nil || m.Parent != full2.Manifest.ID {
		t.Fatalf("manifest on disk: %v %+v", err, m.Parent)
	}
}
