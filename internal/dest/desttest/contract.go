package desttest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"testing"

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

// testClosed checks that a closed destination says so with ErrClosed.
func testClosed(t *testing.T, open Opener) {
	d := open(t)
	ctx := context.Background()
	migrate(t, d, customers)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]error{
		"Write":     d.Write(ctx, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a@x")}, SyncedAt: syncedAt}),
		"SaveState": d.SaveState(ctx, dest.State{Pipeline: "p", Stream: "s", Cursor: json.RawMessage(`1`)}),
	}
	_, calls["LoadState"] = d.LoadState(ctx, "p")
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
	q, ok := d.(dest.Querier)
	if !ok {
		t.Skipf("%T does not implement dest.Querier", d)
	}
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
