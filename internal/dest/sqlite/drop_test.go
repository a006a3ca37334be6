package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqlite"
)

func TestDropRemovesOnlyWhatItNames(t *testing.T) {
	ctx := context.Background()
	d, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"customers", "products"} {
		tbl := dest.Table{Name: name, Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}}}
		if err := d.Migrate(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		b := &dest.Batch{Table: tbl, Rows: []dest.Row{{ID: name + "_1", Values: []any{name + "_1"}}}}
		if err := d.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"acme", "beta"} {
		if err := d.SaveState(ctx, dest.State{Pipeline: p, Stream: "customers", Cursor: json.RawMessage(`{"at":1}`)}); err != nil {
			t.Fatal(err)
		}
		if err := d.SaveRun(ctx, dest.Run{ID: p + "-run", Pipeline: p, Started: time.Unix(1, 0), Status: "succeeded"}); err != nil {
			t.Fatal(err)
		}
	}

	if err := d.DropTables(ctx, []string{"customers", "never_made"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadRows(ctx, "customers"); !errors.Is(err, dest.ErrNoTable) {
		t.Fatalf("customers after the drop: %v", err)
	}
	if _, rows, err := d.Query(ctx, "SELECT count(*) FROM products"); err != nil || rows[0][0] != int64(1) {
		t.Fatalf("products (not named) after the drop: %v %v", rows, err)
	}
	if err := d.DropTables(ctx, []string{dest.StateTable}); err == nil {
		t.Fatal("a bookkeeping table was dropped")
	}

	if err := d.DropPipeline(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int{"acme": 0, "beta": 1} {
		st, err := d.LoadState(ctx, p)
		if err != nil || len(st) != want {
			t.Errorf("state of %s after dropping acme: %v %v, want %d streams", p, st, err, want)
		}
		runs, err := d.Runs(ctx, p, 10)
		if err != nil || len(runs) != want {
			t.Errorf("runs of %s after dropping acme: %v %v, want %d", p, runs, err, want)
		}
	}
	// Writing again after a drop recreates the table.
	tbl := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}}}
	if err := d.Migrate(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, &dest.Batch{Table: tbl, Rows: []dest.Row{{ID: "c2", Values: []any{"c2"}}}}); err != nil {
		t.Fatalf("write after the drop: %v", err)
	}
}
