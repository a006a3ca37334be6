package desttest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/dest"
)

// testSaveState checks SaveState: checkpoints of several pipelines saved
// at once without a table, overwritten by a later call, and nothing saved
// by a call whose context is already cancelled.
func testSaveState(t *testing.T, open Opener) {
	d := openT(t, open)
	ctx := context.Background()
	if err := d.SaveState(ctx); err != nil {
		t.Fatalf("SaveState of nothing: %v", err)
	}
	if err := d.SaveState(ctx,
		dest.State{Pipeline: "p", Stream: "_events", Cursor: json.RawMessage(`{"created":1}`)},
		dest.State{Pipeline: "p", Stream: "_clock", Cursor: json.RawMessage(`5`)},
		dest.State{Pipeline: "q", Stream: "_events", Cursor: json.RawMessage(`"q"`)},
	); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	if err := d.SaveState(ctx, dest.State{Pipeline: "p", Stream: "_clock", Cursor: json.RawMessage(`6`)}); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.SaveState(cctx, dest.State{Pipeline: "p", Stream: "_events", Cursor: json.RawMessage(`"lost"`)}); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveState with a cancelled context = %v, want context.Canceled", err)
	}
	exp := map[string]any{"_events": jsonValue{map[string]any{"created": json.Number("1")}}, "_clock": jsonValue{json.Number("6")}}
	if diff := cmp.Diff(exp, loadState(t, d, "p")); diff != "" {
		t.Errorf("LoadState p (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"_events": jsonValue{"q"}}, loadState(t, d, "q")); diff != "" {
		t.Errorf("LoadState q (-want +got):\n%s", diff)
	}
}

// testClosed checks that a closed destination says so with ErrClosed,
// whatever is asked of it.
func testClosed(t *testing.T, open Opener) {
	d := open(t)
	ctx := context.Background()
	migrate(t, d, customers)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]error{
		"Migrate":   d.Migrate(ctx, customers),
		"Write":     d.Write(ctx, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a@x")}, SyncedAt: syncedAt}),
		"SaveState": d.SaveState(ctx, dest.State{Pipeline: "p", Stream: "s", Cursor: json.RawMessage(`1`)}),
		"SaveRun":   d.SaveRun(ctx, dest.Run{ID: "r", Pipeline: "p", Started: syncedAt, Status: "running"}),
	}
	_, calls["LoadState"] = d.LoadState(ctx, "p")
	_, calls["Runs"] = d.Runs(ctx, "", 0)
	if r, ok := d.(dest.Reader); ok {
		_, calls["Tables"] = r.Tables(ctx)
		_, calls["ReadRows"] = r.ReadRows(ctx, customers.Name)
	}
	if q, ok := d.(dest.Querier); ok {
		_, _, calls["Query"] = q.Query(ctx, "SELECT 1")
	}
	if sw, ok := d.(dest.Sweeper); ok {
		_, calls["MarkDeletedBefore"] = sw.MarkDeletedBefore(ctx, customers.Name, "", syncedAt)
	}
	if l, ok := d.(dest.Locker); ok {
		_, calls["Lock"] = l.Lock(ctx, dest.LockRequest{Pipeline: "p"})
	}
	for name, err := range calls {
		if !errors.Is(err, dest.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping dest.ErrClosed", name, err)
		}
	}
}

// testNoTable checks that reading a table that was never written is
// ErrNoTable.
func testNoTable(t *testing.T, open Opener) {
	d := openT(t, open)
	r, ok := d.(dest.Reader)
	if !ok {
		t.Skipf("%T does not implement dest.Reader", d)
	}
	if _, err := r.ReadRows(context.Background(), "no_such_table"); !errors.Is(err, dest.ErrNoTable) {
		t.Errorf("ReadRows of a missing table = %v, want an error wrapping dest.ErrNoTable", err)
	}
}

// testQueryArgs checks that Query binds ? placeholders: values with
// quotes need no escaping, and a ? inside a literal is not one.
func testQueryArgs(t *testing.T, open Opener) {
	d := openT(t, open)
	q := d.(dest.Querier)
	migrate(t, d, customers)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{
		customer("cus_1", 1, "o'hara@x"), customer("cus_2", 2, "b@x"), customer("cus_3", -3, "o'hara@x"),
	}})
	ctx := context.Background()
	_, rows, err := q.Query(ctx, `SELECT id, '?' AS mark FROM customers WHERE email = ? AND balance > ?`, "o'hara@x", 0)
	if err != nil {
		t.Fatalf("Query with args: %v", err)
	}
	if diff := cmp.Diff([][]any{{"cus_1", "?"}}, rows); diff != "" {
		t.Errorf("Query with args (-want +got):\n%s", diff)
	}
	_, rows, err = q.Query(ctx, `SELECT id FROM customers WHERE id IN (?, ?, ?)`, "cus_3", "cus_2", "nope")
	if err != nil {
		t.Fatalf("Query with args: %v", err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r[0].(string))
	}
	sort.Strings(ids)
	if diff := cmp.Diff([]string{"cus_2", "cus_3"}, ids); diff != "" {
		t.Errorf("Query IN (?, ?, ?) (-want +got):\n%s", diff)
	}
}

// testTables checks Tables: the stream tables, sorted, no bookkeeping.
func testTables(t *testing.T, open Opener) {
	d := openT(t, open)
	r := d.(dest.Reader)
	ctx := context.Background()
	if got, err := r.Tables(ctx); err != nil || len(got) != 0 {
		t.Errorf("Tables of a fresh destination = %v, %v; want none", got, err)
	}
	products := dest.Table{Name: "products", Columns: customers.Columns[:2]}
	invoices := dest.Table{Name: "invoices", Columns: customers.Columns[:2]}
	migrate(t, d, products)
	migrate(t, d, customers)
	write(t, d, &dest.Batch{Table: invoices, Rows: []dest.Row{{ID: "in_1", Values: []any{"in_1", int64(1)}}},
		State: &dest.State{Pipeline: "p", Stream: "invoices", Cursor: json.RawMessage(`1`)}})
	if err := d.SaveRun(ctx, dest.Run{ID: "r", Pipeline: "p", Started: syncedAt, Status: "running"}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Tables(ctx)
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	if diff := cmp.Diff([]string{"customers", "invoices", "products"}, got); diff != "" {
		t.Errorf("Tables (-want +got):\n%s", diff)
	}
}

// testRowsStreamed checks Rows: the same rows as ReadRows over several
// writes (updates and deletion stubs included), a loop broken early
// releases what the read holds, and a missing table is one ErrNoTable.
func testRowsStreamed(t *testing.T, open Opener) {
	d := openT(t, open)
	r := d.(dest.Reader)
	migrate(t, d, customers)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_a", 1, "a@x"), customer("cus_b", 2, "b@x"), customer("cus_c", 3, "c@x")}})
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_b", 20, "b2@x"), {ID: "cus_c", Deleted: true}, customer("cus_d", 4, "d@x")}})
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{{ID: "cus_e", Deleted: true}, customer("cus_a", 10, "a2@x")}})
	want := ReadRows(t, d, customers.Name)
	if len(want) != 5 {
		t.Fatalf("ReadRows: %d rows, want 5", len(want))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[string]map[string]any{}
	for row, err := range r.Rows(ctx, customers.Name) {
		if err != nil {
			t.Fatalf("Rows: %v", err)
		}
		m := map[string]any{}
		for k, v := range row {
			m[k] = normalise(t, v)
		}
		got[row["id"].(string)] = m
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rows differs from ReadRows (-ReadRows +Rows):\n%s", diff)
	}
	for range 8 {
		for _, err := range r.Rows(ctx, customers.Name) {
			if err != nil {
				t.Fatalf("Rows: %v", err)
			}
			break
		}
	}
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_f", 5, "f@x")}})
	if n := len(ReadRows(t, d, customers.Name)); n != 6 {
		t.Errorf("after early breaks, ReadRows has %d rows, want 6", n)
	}
	n := 0
	for row, err := range r.Rows(ctx, "no_such_table") {
		n++
		if row != nil || !errors.Is(err, dest.ErrNoTable) {
			t.Errorf("Rows of a missing table yielded %v, %v; want an error wrapping dest.ErrNoTable", row, err)
		}
	}
	if n != 1 {
		t.Errorf("Rows of a missing table yielded %d times, want once", n)
	}
}

// testDrop checks dest.Dropper: the tables named are gone (and a missing
// one is no error), the others stay; a pipeline's state and runs are gone,
// another pipeline's stay; both are idempotent; a dropped table can be
// made again.
func testDrop(t *testing.T, open Opener) {
	d := openT(t, open)
	ctx := context.Background()
	dr, r := d.(dest.Dropper), d.(dest.Reader)
	products := dest.Table{Name: "products", Columns: customers.Columns[:2]}
	migrate(t, d, customers)
	migrate(t, d, products)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a@x")}, State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`1`)}})
	write(t, d, &dest.Batch{Table: products, Rows: []dest.Row{{ID: "prod_1", Values: []any{"prod_1", int64(2)}}}, State: &dest.State{Pipeline: "q", Stream: "products", Cursor: json.RawMessage(`2`)}})
	for _, run := range []dest.Run{{ID: "run_p", Pipeline: "p", Started: syncedAt, Status: "succeeded"}, {ID: "run_q", Pipeline: "q", Started: syncedAt, Status: "succeeded"}} {
		if err := d.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := dr.DropTables(ctx, []string{"customers", "no_such_table"}); err != nil {
			t.Fatalf("DropTables: %v", err)
		}
		if err := dr.DropPipeline(ctx, "p"); err != nil {
			t.Fatalf("DropPipeline: %v", err)
		}
	}
	if got, err := r.Tables(ctx); err != nil || !cmp.Equal(got, []string{"products"}) {
		t.Errorf("Tables after the drop = %v, %v; want [products]", got, err)
	}
	if _, err := r.ReadRows(ctx, "customers"); !errors.Is(err, dest.ErrNoTable) {
		t.Errorf("ReadRows of a dropped table = %v, want dest.ErrNoTable", err)
	}
	if n := len(ReadRows(t, d, "products")); n != 1 {
		t.Errorf("products has %d rows after another table was dropped, want 1", n)
	}
	if st := loadState(t, d, "p"); len(st) != 0 {
		t.Errorf("state of the dropped pipeline: %v", st)
	}
	if st := loadState(t, d, "q"); len(st) != 1 {
		t.Errorf("state of the other pipeline: %v, want its one cursor", st)
	}
	runs, err := d.Runs(ctx, "", 0)
	if err != nil || len(runs) != 1 || runs[0].ID != "run_q" {
		t.Errorf("runs after the drop = %v, %v; want run_q alone", runs, err)
	}
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_2", 2, "b@x")}})
	check(t, d, customers, "", customer("cus_2", 2, "b@x"))
}
