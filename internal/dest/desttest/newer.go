package desttest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/dest"
)

// versioned is r written from version v.
func versioned(r dest.Row, v int64) dest.Row {
	r.Version = v
	return r
}

// onlyNewer is a conditional batch of customers.
func onlyNewer(rows ...dest.Row) *dest.Batch {
	return &dest.Batch{Table: customers, Rows: rows, OnlyNewer: true, Account: "acct_1"}
}

// stubRow is the read-back row of a deletion stub of an id the table did
// not hold.
func stubRow(id, account string, version int64) map[string]any {
	m := map[string]any{"id": id, dest.ColDeleted: true, dest.ColSyncedAt: syncedAt.Unix(), dest.ColAccount: account, dest.ColVersion: version}
	for _, c := range customers.Columns[1:] {
		m[c.Name] = nil
	}
	return m
}

// checkRows compares a table with rows (customer-shaped) and extra rows.
func checkRows(t *testing.T, d dest.Destination, account string, extra map[string]map[string]any, rows ...dest.Row) {
	t.Helper()
	exp := map[string]map[string]any{}
	for _, r := range rows {
		exp[r.ID] = want(t, customers, r, account)
	}
	for id, m := range extra {
		exp[id] = m
	}
	if diff := cmp.Diff(exp, ReadRows(t, d, customers.Name)); diff != "" {
		t.Errorf("%s rows (-want +got):\n%s", customers.Name, diff)
	}
}

// testOnlyNewer checks conditional writes across batches: a row is written
// only if newer than the stored one (a tie is not), new ids always are,
// deletion stubs follow the same rule, unconditional writes store their
// version as given, the state is saved either way, and a conditional row
// without a version fails the whole batch.
func testOnlyNewer(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	a10, b10 := versioned(customer("cus_a", 1, "a10@x"), 10), versioned(customer("cus_b", 2, "b10@x"), 10)
	write(t, d, onlyNewer(a10, b10))
	checkRows(t, d, "acct_1", nil, a10, b10)

	// Older, a tie, and a new id; the state moves although rows do not.
	b := onlyNewer(versioned(customer("cus_a", 5, "a5@x"), 5), versioned(customer("cus_b", 3, "b-tie@x"), 10), versioned(customer("cus_c", 3, "c1@x"), 1))
	b.State = &dest.State{Pipeline: "p", Stream: "_webhooks", Cursor: json.RawMessage(`7`)}
	write(t, d, b)
	c1 := versioned(customer("cus_c", 3, "c1@x"), 1)
	checkRows(t, d, "acct_1", nil, a10, b10, c1)
	if diff := cmp.Diff(map[string]any{"_webhooks": jsonValue{json.Number("7")}}, loadState(t, d, "p")); diff != "" {
		t.Errorf("state of a conditional batch that wrote little (-want +got):\n%s", diff)
	}

	// Newer rows and stubs are written, older and tied stubs are not; a
	// stub of a new id is a stub row.
	a11 := versioned(customer("cus_a", 11, "a11@x"), 11)
	write(t, d, onlyNewer(a11, dest.Row{ID: "cus_b", Deleted: true, Version: 12}, dest.Row{ID: "cus_c", Deleted: true, Version: 1},
		dest.Row{ID: "cus_d", Deleted: true, Version: 4}))
	b12 := versioned(b10, 12)
	b12.Deleted = true
	stubs := map[string]map[string]any{"cus_d": stubRow("cus_d", "acct_1", 4)}
	checkRows(t, d, "acct_1", stubs, a11, b12, c1)

	// An unconditional write stores its version as given, even an older
	// one; a conditional write newer than that one is written again.
	a2 := versioned(customer("cus_a", 2, "a2@x"), 2)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{a2}, Account: "acct_1"})
	checkRows(t, d, "acct_1", stubs, a2, b12, c1)
	a3 := versioned(customer("cus_a", 3, "a3@x"), 3)
	write(t, d, onlyNewer(a3))
	checkRows(t, d, "acct_1", stubs, a3, b12, c1)

	// A conditional row without a version: nothing of the batch written.
	err := writeRaw(context.Background(), d, &dest.Batch{Table: customers, OnlyNewer: true, Account: "acct_1", SyncedAt: syncedAt,
		Rows: []dest.Row{versioned(customer("cus_e", 5, "e@x"), 5), customer("cus_f", 6, "f@x")}})
	if err == nil {
		t.Error("a conditional write of a row without a version succeeded")
	}
	checkRows(t, d, "acct_1", stubs, a3, b12, c1)
}

// testOnlyNewerInBatch checks Batch.Merge's rule for conditional batches
// that hold an id more than once: the highest version wins, a tie keeps
// the first, stubs and rows compete by version too.
func testOnlyNewerInBatch(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	x7 := versioned(customer("cus_x", 7, "x7@x"), 7)
	z8 := versioned(customer("cus_z", 8, "z8@x"), 8)
	w9 := versioned(customer("cus_w", 5, "w5@x"), 5)
	write(t, d, onlyNewer(
		versioned(customer("cus_x", 3, "x3@x"), 3), x7, versioned(customer("cus_x", 5, "x5@x"), 5),
		versioned(customer("cus_x", 70, "x7-tie@x"), 7), dest.Row{ID: "cus_x", Deleted: true, Version: 6},
		dest.Row{ID: "cus_y", Deleted: true, Version: 4}, versioned(customer("cus_y", 2, "y2@x"), 2),
		dest.Row{ID: "cus_z", Deleted: true, Version: 4}, z8,
		w9, dest.Row{ID: "cus_w", Deleted: true, Version: 9},
	))
	w9 = versioned(w9, 9)
	w9.Deleted = true
	checkRows(t, d, "acct_1", map[string]map[string]any{"cus_y": stubRow("cus_y", "acct_1", 4)}, x7, z8, w9)
}
