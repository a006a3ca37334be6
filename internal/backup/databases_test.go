package backup_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
)

// pgSchemaURL is STRIPELINE_TEST_POSTGRES with a fresh schema, dropped
// after the test; the test is skipped when the variable is unset.
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	return desttest.PostgresSchema(t, "stripeline_backup", "backups of and restores into PostgreSQL are")
}

// TestPostgresBackupAndRestore backs up a PostgreSQL replica (jsonb:
// keys reordered), restores the snapshot into SQLite and a SQLite one
// into PostgreSQL: each equals its snapshot field by field, cursors
// included, and incremental backups of the PostgreSQL replica store only
// what changed.
func TestPostgresBackupAndRestore(t *testing.T) {
	t.Parallel()
	pg := pgSchemaURL(t)
	f := newFixture(t, 150, pg)
	dir := t.TempDir()
	s1 := f.backup(t, dir, false)
	if err := f.emu.Mutate("", "customers", 1, 3, 1); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	s2 := f.backup(t, dir, false)
	if cs := s2.Manifest.Stream("customers"); cs.Stored > 5 || cs.Stored == 0 || s2.Manifest.Parent != s1.Manifest.ID {
		t.Fatalf("incremental backup of PostgreSQL stored %d customers (parent %q)", cs.Stored, s2.Manifest.Parent)
	}
	if d := diff(t, backup.SnapshotSource{S: s2}, backup.ReplicaSource{R: f.dst.(dest.Reader), URL: pg}); !d.Empty() {
		t.Fatalf("snapshot of PostgreSQL differs from it: %v", counts(d))
	}

	ctx := context.Background()
	lite := "sqlite://" + filepath.Join(t.TempDir(), "copy.db")
	into, err := dest.Open(ctx, lite)
	if err != nil {
		t.Fatal(err)
	}
	defer into.Close()
	if _, err := s2.RestoreInto(ctx, backup.RestoreOptions{Into: into}); err != nil {
		t.Fatal(err)
	}
	if d := diff(t, backup.SnapshotSource{S: s2}, backup.ReplicaSource{R: into.(dest.Reader), URL: lite}); !d.Empty() {
		t.Fatalf("SQLite restored from PostgreSQL's snapshot differs: %v", counts(d))
	}
	// And back: a snapshot of the SQLite copy restored into a new schema.
	liteSnap, err := backup.Create(ctx, backup.CreateOptions{Source: into, SourceURL: lite, Pipeline: "main", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pg2 := pgSchemaURL(t)
	back, err := dest.Open(ctx, pg2)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := liteSnap.RestoreInto(ctx, backup.RestoreOptions{Into: back}); err != nil {
		t.Fatal(err)
	}
	if d := diff(t, backup.SnapshotSource{S: s2}, backup.ReplicaSource{R: back.(dest.Reader), URL: pg2}); !d.Empty() {
		t.Fatalf("PostgreSQL restored from SQLite's snapshot differs from the original: %v", counts(d))
	}
	want, _ := f.dst.LoadState(ctx, "main")
	got, _ := back.LoadState(ctx, "main")
	if len(want) == 0 || !cmp.Equal(normCursors(want), normCursors(got)) {
		t.Fatalf("cursors %v, want %v", got, want)
	}
}

func normCursors(m map[string]json.RawMessage) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// myDatabaseURL makes a fresh database on STRIPELINE_TEST_MYSQL, dropped
// after the test; the test is skipped when the variable is unset.
func myDatabaseURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_MYSQL")
	if base == "" {
		t.Skip("STRIPELINE_TEST_MYSQL is not set: restores into MySQL are not tested")
	}
	dsn, _, err := mysql.DSN(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "stripeline_backup_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("STRIPELINE_TEST_MYSQL=%s: %v", dest.Redact(base), err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// TestMySQLRestoreAndBackup restores a SQLite replica's snapshot into
// MySQL, backs the MySQL replica up and restores that into SQLite: both
// equal the first snapshot.
func TestMySQLRestoreAndBackup(t *testing.T) {
	t.Parallel()
	my := myDatabaseURL(t)
	f := newFixture(t, 120, "")
	s1 := f.backup(t, t.TempDir(), false)
	ctx := context.Background()
	into, err := dest.Open(ctx, my)
	if err != nil {
		t.Fatal(err)
	}
	defer into.Close()
	if _, err := s1.RestoreInto(ctx, backup.RestoreOptions{Into: into}); err != nil {
		t.Fatal(err)
	}
	if d := diff(t, backup.SnapshotSource{S: s1}, backup.ReplicaSource{R: into.(dest.Reader), URL: my}); !d.Empty() {
		t.Fatalf("MySQL restored from a snapshot differs from it: %v", counts(d))
	}
	s2, err := backup.Create(ctx, backup.CreateOptions{Source: into, SourceURL: my, Pipeline: "main", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(t, backup.SnapshotSource{S: s1}, backup.SnapshotSource{S: s2}); !d.Empty() {
		t.Fatalf("snapshot of the MySQL copy differs from the original: %v", counts(d))
	}
}
