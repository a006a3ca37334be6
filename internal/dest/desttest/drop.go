package desttest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Dropper checks a destination's dest.Dropper (and dest.Reader) on d, an
// empty replica: DropTables removes the tables named and no other, never
// a bookkeeping table, and a dropped table comes back on the next write;
// DropPipeline forgets one pipeline's state and runs, not another's.
func Dropper(t *testing.T, d dest.Destination) {
	t.Helper()
	ctx := context.Background()
	dr, ok := d.(dest.Dropper)
	if !ok {
		t.Fatalf("%T does not implement dest.Dropper", d)
	}
	rd, ok := d.(dest.Reader)
	if !ok {
		t.Fatalf("%T does not implement dest.Reader", d)
	}
	tableOf := func(name string) dest.Table {
		return dest.Table{Name: name, Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}}}
	}
	for _, name := range []string{"customers", "products"} {
		tbl := tableOf(name)
		if err := d.Migrate(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if err := d.Write(ctx, &dest.Batch{Table: tbl, Rows: []dest.Row{{ID: name + "_1", Values: []any{name + "_1"}}}}); err != nil {
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

	if err := dr.DropTables(ctx, []string{"customers", "never_made"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.ReadRows(ctx, "customers"); !errors.Is(err, dest.ErrNoTable) {
		t.Fatalf("customers after the drop: %v, want dest.ErrNoTable", err)
	}
	if rows, err := rd.ReadRows(ctx, "products"); err != nil || len(rows) != 1 {
		t.Fatalf("products (not named) after the drop: %v %v", rows, err)
	}
	if err := dr.DropTables(ctx, []string{dest.StateTable}); err == nil {
		t.Fatal("a bookkeeping table was dropped")
	}

	if err := dr.DropPipeline(ctx, "acme"); err != nil {
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
	// A write after the drop creates the table again.
	tbl := tableOf("customers")
	if err := d.Migrate(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, &dest.Batch{Table: tbl, Rows: []dest.Row{{ID: "c2", Values: []any{"c2"}}}}); err != nil {
		t.Fatalf("write after the drop: %v", err)
	}
	if rows, err := rd.ReadRows(ctx, "customers"); err != nil || len(rows) != 1 {
		t.Fatalf("customers written again: %v %v", rows, err)
	}
}
