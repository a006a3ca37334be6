package sqlite_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/sqlite"
)

func TestConformance(t *testing.T) {
	var places desttest.Places
	desttest.RunWith(t, func(t *testing.T) dest.Destination {
		return places.Open(t, "sqlite://"+filepath.Join(t.TempDir(), "replica.db"))
	}, desttest.Options{
		Caps:   desttest.Caps{Query: true, Sweep: true, Lock: true, OnlyNewer: true, Drop: true},
		Reopen: places.Reopen,
		Fresh: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			return desttest.OpenAt("sqlite://" + filepath.Join(t.TempDir(), "first.db"))
		},
		// A file that is not a database: set-up fails, and the file is
		// left as it was.
		OpenBroken: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			path := filepath.Join(t.TempDir(), "notes.db")
			junk := []byte(strings.Repeat("these are not the rows you are looking for\n", 200))
			if err := os.WriteFile(path, junk, 0o644); err != nil {
				t.Fatal(err)
			}
			return func(ctx context.Context) (dest.Destination, error) {
				d, err := dest.Open(ctx, "sqlite://"+path)
				if got, rerr := os.ReadFile(path); rerr != nil || string(got) != string(junk) {
					t.Errorf("Open changed the file it could not use (read: %v)", rerr)
				}
				return d, err
			}
		},
	})
}

func TestPathFromURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sqlite://stripeline.db", "stripeline.db"},
		{"sqlite:///abs/dir/x.db", "/abs/dir/x.db"},
		{"sqlite://./dir/x.db", "./dir/x.db"},
		{"sqlite://dir/x.db", "dir/x.db"},
	} {
		u := mustParse(t, tc.in)
		if got := sqlite.PathFromURL(u); got != tc.want {
			t.Errorf("PathFromURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenUnwritableDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "deeper")
	_, err := dest.Open(context.Background(), "sqlite://"+filepath.Join(dir, "x.db"))
	if err == nil {
		t.Fatal("opening a database in a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), "sqlite://") || !strings.Contains(err.Error(), "writable") {
		t.Errorf("error %q does not name the destination and the fix", err)
	}
}

func TestOpenReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := dest.Open(context.Background(), "sqlite://"+filepath.Join(dir, "x.db"))
	if err == nil {
		t.Fatal("opening a database in a read-only directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestQueryTypes(t *testing.T) {
	ctx := context.Background()
	d, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger},
		{Name: "ok", Type: catalog.TypeBoolean}, {Name: "meta", Type: catalog.TypeJSON}, {Name: "x", Type: catalog.TypeNumber}}}
	if err := d.Migrate(ctx, tb); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, &dest.Batch{Table: tb, SyncedAt: time.Unix(5, 0), Rows: []dest.Row{{ID: "c1", Values: []any{"c1", int64(7), true, json.RawMessage(`{"a":1}`), 1.5}}}}); err != nil {
		t.Fatal(err)
	}
	cols, rows, err := d.Query(ctx, `SELECT id, n, ok, meta, x, _stripeline_deleted, _stripeline_synced_at FROM customers`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"id", "n", "ok", "meta", "x", "_stripeline_deleted", "_stripeline_synced_at"}, cols); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([][]any{{"c1", int64(7), true, `{"a":1}`, 1.5, false, int64(5)}}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if _, _, err := d.Query(ctx, `DELETE FROM customers`); err == nil {
		t.Error("Query ran a write statement")
	}
}
