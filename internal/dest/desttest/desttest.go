package desttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// customers is a table with one column of every type and keyword names.
var customers = dest.Table{Name: "customers", Columns: []dest.Column{
	{Name: "id", Type: catalog.TypeString},
	{Name: "balance", Type: catalog.TypeInteger},
	{Name: "created", Type: catalog.TypeInteger},
	{Name: "delinquent", Type: catalog.TypeBoolean},
	{Name: "email", Type: catalog.TypeString},
	{Name: "metadata", Type: catalog.TypeJSON},
	{Name: "object", Type: catalog.TypeString},
	{Name: "rate", Type: catalog.TypeNumber},
}}

var syncedAt = time.Unix(1_700_000_000, 0)

func customer(id string, balance int64, email string) dest.Row {
	raw := fmt.Sprintf(`{"id":%q,"object":"customer","balance":%d,"email":%q}`, id, balance, email)
	return dest.Row{ID: id, Values: []any{id, balance, int64(1_600_000_000), balance < 0, email,
		json.RawMessage(`{"k":"v"}`), "customer", 0.5}, Raw: json.RawMessage(raw)}
}

func openT(t *testing.T, open Opener) dest.Destination {
	t.Helper()
	d := open(t)
	t.Cleanup(func() { d.Close() })
	return d
}

func migrate(t *testing.T, d dest.Destination, tb dest.Table) {
	t.Helper()
	if err := d.Migrate(context.Background(), tb); err != nil {
		t.Fatalf("Migrate %s: %v", tb.Name, err)
	}
}

func write(t *testing.T, d dest.Destination, b *dest.Batch) {
	t.Helper()
	if b.SyncedAt.IsZero() {
		b.SyncedAt = syncedAt
	}
	if err := writeRaw(context.Background(), d, b); err != nil {
		t.Fatalf("Write %s: %v", b.Table.Name, err)
	}
}

// writeRaw sets each row's Raw to the object its values describe, as the
// engine does (file destinations write Raw), and writes the batch.
func writeRaw(ctx context.Context, d dest.Destination, b *dest.Batch) error {
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.Values == nil || len(r.Values) != len(b.Table.Columns) {
			continue
		}
		var buf bytes.Buffer
		buf.WriteByte('{')
		for j, c := range b.Table.Columns {
			if j > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(c.Name)
			buf.Write(k)
			buf.WriteByte(':')
			v, err := json.Marshal(r.Values[j])
			if err != nil {
				v = []byte("null") // an unsupported value: the write must fail on it
			}
			buf.Write(v)
		}
		buf.WriteByte('}')
		r.Raw = buf.Bytes()
	}
	return d.Write(ctx, b)
}

// ReadRows reads a table back through dest.Reader, keyed by id, with JSON
// values decoded (numbers as json.Number) so that formatting does not matter.
func ReadRows(t testing.TB, d dest.Destination, table string) map[string]map[string]any {
	t.Helper()
	r, ok := d.(dest.Reader)
	if !ok {
		t.Fatalf("%T does not implement dest.Reader", d)
	}
	rows, err := r.ReadRows(context.Background(), table)
	if err != nil {
		t.Fatalf("ReadRows %s: %v", table, err)
	}
	out := map[string]map[string]any{}
	for _, row := range rows {
		id, _ := row["id"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("%s: id %q appears twice", table, id)
		}
		m := map[string]any{}
		for k, v := range row {
			m[k] = normalise(t, v)
		}
		out[id] = m
	}
	return out
}

func normalise(t testing.TB, v any) any {
	switch x := v.(type) {
	case nil, string, int64, float64, bool:
		return x
	case json.RawMessage:
		return decodeJSON(t, x)
	default:
		t.Errorf("ReadRows returned %T (%v); want nil, string, int64, float64, bool or json.RawMessage", v, v)
		return v
	}
}

// jsonValue wraps decoded JSON so cmp tells it apart from plain strings.
type jsonValue struct{ V any }

func decodeJSON(t testing.TB, raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Errorf("invalid JSON read back: %.80q: %v", raw, err)
	}
	return jsonValue{v}
}

// want builds the expected read-back row of a customer-shaped row.
func want(t testing.TB, tb dest.Table, r dest.Row, account string) map[string]any {
	m := map[string]any{dest.ColDeleted: r.Deleted, dest.ColSyncedAt: syncedAt.Unix(), dest.ColAccount: account, dest.ColVersion: r.Version}
	for i, c := range tb.Columns {
		v := r.Values[i]
		switch x := v.(type) {
		case json.RawMessage:
			m[c.Name] = decodeJSON(t, x)
		case int:
			m[c.Name] = int64(x)
		default:
			m[c.Name] = v
		}
	}
	return m
}

func check(t *testing.T, d dest.Destination, tb dest.Table, account string, rows ...dest.Row) {
	t.Helper()
	exp := map[string]map[string]any{}
	for _, r := range rows {
		exp[r.ID] = want(t, tb, r, account)
	}
	got := ReadRows(t, d, tb.Name)
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Errorf("%s rows (-want +got):\n%s", tb.Name, diff)
	}
}

func testCreateTable(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	migrate(t, d, customers) // twice is fine
	a, b := customer("cus_1", 100, "a@example.com"), customer("cus_2", -5, "b@example.com")
	b.Values[5] = nil
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{a, b}, Account: "acct_1"})
	check(t, d, customers, "acct_1", a, b)
}

func testIdempotent(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	rows := []dest.Row{customer("cus_1", 1, "a@x"), customer("cus_2", 2, "b@x"), customer("cus_3", 3, "c@x")}
	write(t, d, &dest.Batch{Table: customers, Rows: rows})
	first := ReadRows(t, d, customers.Name)
	write(t, d, &dest.Batch{Table: customers, Rows: rows})
	if diff := cmp.Diff(first, ReadRows(t, d, customers.Name)); diff != "" {
		t.Errorf("same batch twice changed the rows (-first +second):\n%s", diff)
	}
	check(t, d, customers, "", rows...)
	// An update of one row leaves the others alone.
	upd := customer("cus_2", 20, "b2@x")
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{upd}})
	check(t, d, customers, "", rows[0], upd, rows[2])
}

func testDuplicateIDs(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	last := customer("cus_1", 3, "third@x")
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{
		customer("cus_1", 1, "first@x"), customer("cus_2", 2, "b@x"), customer("cus_1", 2, "second@x"), last,
	}})
	check(t, d, customers, "", last, customer("cus_2", 2, "b@x"))
	// A deletion stub after an upsert of the same id in one batch: the
	// row keeps the upserted values and is flagged.
	del := customer("cus_2", 9, "nine@x")
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{del, {ID: "cus_2", Deleted: true}}})
	del.Deleted = true
	check(t, d, customers, "", last, del)
}

func testSoftDelete(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	a, b, c := customer("cus_a", 1, "a@x"), customer("cus_b", 2, "b@x"), customer("cus_c", 3, "c@x")
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{a, b, c}, Account: "acct_9"})
	// Deleted with values: the values are written and the flag set.
	a2 := customer("cus_a", 10, "a-final@x")
	a2.Deleted = true
	// Deleted without values: the flag set, the other columns untouched.
	write(t, d, &dest.Batch{Table: customers, Account: "acct_9", Rows: []dest.Row{a2, {ID: "cus_b", Deleted: true}, {ID: "cus_new", Deleted: true}}})
	b.Deleted = true
	got := ReadRows(t, d, customers.Name)
	stub := map[string]any{"id": "cus_new", dest.ColDeleted: true, dest.ColSyncedAt: syncedAt.Unix(), dest.ColAccount: "acct_9", dest.ColVersion: int64(0)}
	for _, col := range customers.Columns[1:] {
		stub[col.Name] = nil
	}
	exp := map[string]map[string]any{
		"cus_a": want(t, customers, a2, "acct_9"), "cus_b": want(t, customers, b, "acct_9"),
		"cus_c": want(t, customers, c, "acct_9"), "cus_new": stub,
	}
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Errorf("after deletes (-want +got):\n%s", diff)
	}
	// Resurrection: an upsert without the flag clears it.
	write(t, d, &dest.Batch{Table: customers, Account: "acct_9", Rows: []dest.Row{customer("cus_b", 2, "b@x")}})
	if got := ReadRows(t, d, customers.Name)["cus_b"][dest.ColDeleted]; got != false {
		t.Errorf("cus_b deleted = %v after a plain upsert, want false", got)
	}
}

func testSchemaEvolution(t *testing.T, open Opener) {
	d := openT(t, open)
	v1 := dest.Table{Name: "products", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "name", Type: catalog.TypeString}}}
	migrate(t, d, v1)
	old := dest.Row{ID: "prod_1", Values: []any{"prod_1", "Old"}, Raw: json.RawMessage(`{"id":"prod_1","name":"Old"}`)}
	write(t, d, &dest.Batch{Table: v1, Rows: []dest.Row{old}})

	v2 := dest.Table{Name: "products", Columns: append(append([]dest.Column{}, v1.Columns...),
		dest.Column{Name: "active", Type: catalog.TypeBoolean}, dest.Column{Name: "features", Type: catalog.TypeJSON})}
	migrate(t, d, v2)
	migrate(t, d, v1) // fewer columns never drops one
	nw := dest.Row{ID: "prod_2", Values: []any{"prod_2", "New", true, json.RawMessage(`[{"name":"x"}]`)},
		Raw: json.RawMessage(`{"id":"prod_2","name":"New","active":true,"features":[{"name":"x"}]}`)}
	write(t, d, &dest.Batch{Table: v2, Rows: []dest.Row{nw}})
	oldWant := want(t, v1, old, "")
	oldWant["active"], oldWant["features"] = nil, nil
	exp := map[string]map[string]any{"prod_1": oldWant, "prod_2": want(t, v2, nw, "")}
	if diff := cmp.Diff(exp, ReadRows(t, d, "products")); diff != "" {
		t.Errorf("after a new column (-want +got):\n%s", diff)
	}
	// A batch written with the old shape still works and leaves the new
	// columns of other rows alone.
	old2 := dest.Row{ID: "prod_1", Values: []any{"prod_1", "Old2"}}
	write(t, d, &dest.Batch{Table: v1, Rows: []dest.Row{old2}})
	if got := ReadRows(t, d, "products")["prod_2"]["active"]; got != true {
		t.Errorf("prod_2 active = %v after an old-shape write, want true", got)
	}
}

// badValue is a value of no type the contract allows: every destination
// must reject it, which makes the batch fail after some rows were sent.
type badValue struct{}

func loadState(t *testing.T, d dest.Destination, pipeline string) map[string]any {
	t.Helper()
	st, err := d.LoadState(context.Background(), pipeline)
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	out := map[string]any{}
	for k, v := range st {
		if v == nil {
			out[k] = nil
			continue
		}
		out[k] = decodeJSON(t, v)
	}
	return out
}

func testAtomic(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	first := []dest.Row{customer("cus_1", 1, "a@x"), customer("cus_2", 2, "b@x")}
	write(t, d, &dest.Batch{Table: customers, Rows: first, State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`{"n":1}`)}})

	// Many good rows (some updating existing ones), then a bad one last.
	var rows []dest.Row
	for i := range 500 {
		rows = append(rows, customer(fmt.Sprintf("cus_%d", i), int64(i+100), "new@x"))
	}
	bad := customer("cus_bad", 0, "bad@x")
	bad.Values[4] = badValue{}
	rows = append(rows, bad)
	err := writeRaw(context.Background(), d, &dest.Batch{Table: customers, Rows: rows, SyncedAt: syncedAt,
		State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`{"n":2}`)}})
	if err == nil {
		t.Fatal("Write accepted a value of an unsupported type")
	}
	if !strings.Contains(err.Error(), "customers") {
		t.Errorf("error %q does not name the table", err)
	}
	check(t, d, customers, "", first...)
	if diff := cmp.Diff(map[string]any{"customers": jsonValue{map[string]any{"n": json.Number("1")}}}, loadState(t, d, "p")); diff != "" {
		t.Errorf("state after a failed batch (-want +got):\n%s", diff)
	}
	// A row whose Values do not match the columns fails the same way.
	short := dest.Row{ID: "cus_short", Values: []any{"cus_short"}}
	err = writeRaw(context.Background(), d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_9", 9, "x"), short}, SyncedAt: syncedAt,
		State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`{"n":3}`)}})
	if err == nil {
		t.Fatal("Write accepted a row with too few values")
	}
	check(t, d, customers, "", first...)
	// The destination is still usable after a failure.
	write(t, d, &dest.Batch{Table: customers, Rows: rows[:500], State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`{"n":4}`)}})
	check(t, d, customers, "", rows[:500]...)
	if diff := cmp.Diff(map[string]any{"customers": jsonValue{map[string]any{"n": json.Number("4")}}}, loadState(t, d, "p")); diff != "" {
		t.Errorf("state after a good batch (-want +got):\n%s", diff)
	}
}

func testCancelled(t *testing.T, open Opener) {
	d := openT(t, open)
	migrate(t, d, customers)
	first := []dest.Row{customer("cus_1", 1, "a@x")}
	write(t, d, &dest.Batch{Table: customers, Rows: first, State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`1`)}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := writeRaw(ctx, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_2", 2, "b@x")}, SyncedAt: syncedAt,
		State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`2`)}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: got %v, want context.Canceled", err)
	}
	check(t, d, customers, "", first...)
	if diff := cmp.Diff(map[string]any{"customers": jsonValue{json.Number("1")}}, loadState(t, d, "p")); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

func testState(t *testing.T, open Opener) {
	d := openT(t, open)
	if st := loadState(t, d, "p1"); len(st) != 0 {
		t.Errorf("fresh destination has state %v", st)
	}
	migrate(t, d, customers)
	cur := json.RawMessage(`{"created_gte":1700000000,"event":"evt_123","ranges":[[1,2],[3,4]],"note":"ünïcødé 🚀"}`)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a")}, State: &dest.State{Pipeline: "p1", Stream: "customers", Cursor: cur}})
	// A batch without rows advances the state alone (the events cursor).
	write(t, d, &dest.Batch{Table: customers, State: &dest.State{Pipeline: "p1", Stream: "_events", Cursor: json.RawMessage(`"evt_9"`)}})
	write(t, d, &dest.Batch{Table: customers, State: &dest.State{Pipeline: "p2", Stream: "customers", Cursor: json.RawMessage(`{"other":true}`)}})
	// Overwrite.
	write(t, d, &dest.Batch{Table: customers, State: &dest.State{Pipeline: "p1", Stream: "_events", Cursor: json.RawMessage(`"evt_10"`)}})
	exp := map[string]any{"customers": decodeJSON(t, cur), "_events": jsonValue{"evt_10"}}
	if diff := cmp.Diff(exp, loadState(t, d, "p1")); diff != "" {
		t.Errorf("LoadState p1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"customers": jsonValue{map[string]any{"other": true}}}, loadState(t, d, "p2")); diff != "" {
		t.Errorf("LoadState p2 (-want +got):\n%s", diff)
	}
}

func testRuns(t *testing.T, open Opener) {
	d := openT(t, open)
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	if runs, err := d.Runs(ctx, "", 10); err != nil || len(runs) != 0 {
		t.Fatalf("Runs on a fresh destination: %v, %v", runs, err)
	}
	var saved []dest.Run
	for i := range 5 {
		pipeline := "a"
		if i%2 == 1 {
			pipeline = "b"
		}
		r := dest.Run{ID: fmt.Sprintf("run_%d", i), Pipeline: pipeline, Started: base.Add(time.Duration(i) * time.Minute), Status: "running"}
		if err := d.SaveRun(ctx, r); err != nil {
			t.Fatalf("SaveRun: %v", err)
		}
		saved = append(saved, r)
	}
	// Finish run_3 (an update by id).
	saved[3].Finished = base.Add(4*time.Minute + 30*time.Second)
	saved[3].Status = "failed"
	saved[3].Error = "list charges: boom 💥"
	saved[3].Streams = json.RawMessage(`{"customers":{"rows":12}}`)
	if err := d.SaveRun(ctx, saved[3]); err != nil {
		t.Fatalf("SaveRun update: %v", err)
	}
	opt := cmp.Comparer(func(a, b json.RawMessage) bool {
		if len(a) == 0 || len(b) == 0 {
			return len(a) == len(b)
		}
		return cmp.Equal(decodeJSON(t, a), decodeJSON(t, b))
	})
	timeOpt := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	runs, err := d.Runs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := []dest.Run{saved[4], saved[3], saved[2], saved[1], saved[0]}
	if diff := cmp.Diff(exp, runs, opt, timeOpt); diff != "" {
		t.Errorf("Runs all (-want +got):\n%s", diff)
	}
	runs, err = d.Runs(ctx, "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dest.Run{saved[3]}, runs, opt, timeOpt); diff != "" {
		t.Errorf("Runs b limit 1 (-want +got):\n%s", diff)
	}
}

func testChildTables(t *testing.T, open Opener) {
	d := openT(t, open)
	invoices := dest.Table{Name: "invoices", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "total", Type: catalog.TypeInteger}}}
	lines := dest.Table{Name: "invoices_lines", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "invoice", Type: catalog.TypeString}, {Name: "amount", Type: catalog.TypeInteger}}}
	migrate(t, d, invoices)
	migrate(t, d, lines)
	inv := dest.Row{ID: "in_1", Values: []any{"in_1", int64(300)}}
	l1 := dest.Row{ID: "il_1", Values: []any{"il_1", "in_1", int64(100)}}
	l2 := dest.Row{ID: "il_2", Values: []any{"il_2", "in_1", int64(200)}}
	write(t, d, &dest.Batch{Table: lines, Rows: []dest.Row{l1, l2}})
	write(t, d, &dest.Batch{Table: invoices, Rows: []dest.Row{inv}, State: &dest.State{Pipeline: "p", Stream: "invoices", Cursor: json.RawMessage(`{}`)}})
	check(t, d, invoices, "", inv)
	check(t, d, lines, "", l1, l2)
}

func testOddValues(t *testing.T, open Opener) {
	d := openT(t, open)
	tb := dest.Table{Name: "odd_things", Columns: []dest.Column{
		{Name: "id", Type: catalog.TypeString},
		{Name: "object", Type: catalog.TypeString},
		{Name: "type", Type: catalog.TypeString},
		{Name: "order", Type: catalog.TypeInteger},
		{Name: "group", Type: catalog.TypeJSON},
		{Name: "select", Type: catalog.TypeBoolean},
		{Name: "amount", Type: catalog.TypeNumber},
		{Name: "desc", Type: catalog.TypeString},
	}}
	migrate(t, d, tb)
	big := strings.Repeat(`{"k":"ünïcødé 🚀 \"quoted\" \\ back\nline","n":12345678901234567},`, 15000)
	huge := json.RawMessage(`{"items":[` + strings.TrimSuffix(big, ",") + `]}`)
	if len(huge) < 1<<20 {
		t.Fatalf("huge JSON is only %d bytes", len(huge))
	}
	rows := []dest.Row{
		{ID: "odd_unicode", Values: []any{"odd_unicode", "ünïcødé — 中文 — עברית", "emoji 🚀🎉👍🏽", int64(9007199254740993), json.RawMessage(`{"emoji":"🚀","nested":{"a":[1,2,3]}}`), true, 0.1, "tab\tnew\nline \"q\" 'single' ; DROP TABLE x; --"}},
		{ID: "odd_nulls", Values: []any{"odd_nulls", nil, nil, nil, nil, nil, nil, nil}},
		{ID: "odd_minint", Values: []any{"odd_minint", "x", "y", int64(-1 << 63), json.RawMessage(`[]`), false, -1e300, "comma,quote\",cr\r"}},
		{ID: "odd_maxint", Values: []any{"odd_maxint", "x", "y", int64(1<<63 - 1), json.RawMessage(`"just a string"`), false, 123456.789, "back\\slash"}},
		{ID: "odd_huge", Values: []any{"odd_huge", "x", "y", int64(0), huge, true, 0.0, strings.Repeat("é", 100000)}},
		{ID: "odd_scalar_json", Values: []any{"odd_scalar_json", "x", "y", int64(1), json.RawMessage(`12345678901234567890`), true, 2.5, "x"}},
		{ID: "id with spaces/and 'quotes' 🚀", Values: []any{"id with spaces/and 'quotes' 🚀", "x", "y", int64(1), json.RawMessage(`null`), true, 2.5, "x"}},
	}
	write(t, d, &dest.Batch{Table: tb, Rows: rows, Account: "acct_ü"})
	got := ReadRows(t, d, tb.Name)
	for _, r := range rows {
		w := want(t, tb, r, "acct_ü")
		if r.ID == "id with spaces/and 'quotes' 🚀" {
			// A JSON null may come back as SQL NULL.
			if g := got[r.ID]["group"]; g == nil {
				w["group"] = nil
			}
		}
		if diff := cmp.Diff(w, got[r.ID]); diff != "" {
			t.Errorf("row %s (-want +got):\n%.3000s", r.ID, diff)
		}
	}
	if len(got) != len(rows) {
		t.Errorf("read %d rows, want %d", len(got), len(rows))
	}
}

func testConcurrent(t *testing.T, open Opener) {
	d := openT(t, open)
	const streams, batches, perBatch = 6, 5, 40
	var wg sync.WaitGroup
	errs := make(chan error, streams*batches)
	for s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := customers
			tb.Name = fmt.Sprintf("stream_%d", s)
			if err := d.Migrate(context.Background(), tb); err != nil {
				errs <- err
				return
			}
			for b := range batches {
				var rows []dest.Row
				for i := range perBatch {
					rows = append(rows, customer(fmt.Sprintf("cus_%d_%d", b, i), int64(i), "c@x"))
				}
				err := writeRaw(context.Background(), d, &dest.Batch{Table: tb, Rows: rows, SyncedAt: syncedAt,
					State: &dest.State{Pipeline: "p", Stream: tb.Name, Cursor: json.RawMessage(fmt.Sprint(b))}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := loadState(t, d, "p")
	var names []string
	for s := range streams {
		name := fmt.Sprintf("stream_%d", s)
		names = append(names, name)
		if got := len(ReadRows(t, d, name)); got != batches*perBatch {
			t.Errorf("%s has %d rows, want %d", name, got, batches*perBatch)
		}
		if got, want := st[name], (jsonValue{json.Number(fmt.Sprint(batches - 1))}); got != want {
			t.Errorf("%s state = %v, want %v", name, got, want)
		}
	}
	sort.Strings(names)
}

// testReopenAfterClose checks Close is safe to call twice.
func testReopenAfterClose(t *testing.T, open Opener) {
	d := open(t)
	migrate(t, d, customers)
	write(t, d, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a")}})
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d.Close()
}

// testSweeper checks dest.Sweeper, for destinations that implement it:
// MarkDeletedBefore flags the live rows of one account last written before
// a time, counts them, and leaves newer rows, rows already flagged and
// other accounts' rows alone, their values untouched.
func testSweeper(t *testing.T, open Opener) {
	d := openT(t, open)
	sw := d.(dest.Sweeper)
	migrate(t, d, customers)
	t1, t2 := syncedAt, syncedAt.Add(time.Hour)
	old1, old2, gone := customer("cus_old1", 1, "o1@x"), customer("cus_old2", 2, "o2@x"), customer("cus_gone", 3, "g@x")
	gone.Deleted = true
	other := customer("cus_other", 4, "b@x")
	write(t, d, &dest.Batch{Table: customers, Account: "acct_a", SyncedAt: t1, Rows: []dest.Row{old1, old2, gone}})
	write(t, d, &dest.Batch{Table: customers, Account: "acct_b", SyncedAt: t1, Rows: []dest.Row{other}})
	fresh, again := customer("cus_new", 5, "n@x"), customer("cus_old2", 20, "o2-again@x")
	write(t, d, &dest.Batch{Table: customers, Account: "acct_a", SyncedAt: t2, Rows: []dest.Row{fresh, again}})

	n, err := sw.MarkDeletedBefore(context.Background(), customers.Name, "acct_a", t2)
	if err != nil {
		t.Fatalf("MarkDeletedBefore: %v", err)
	}
	if n != 1 {
		t.Errorf("MarkDeletedBefore flagged %d rows, want 1 (cus_old1)", n)
	}
	at := func(r dest.Row, account string, when time.Time, deleted bool) map[string]any {
		r.Deleted = deleted
		m := want(t, customers, r, account)
		m[dest.ColSyncedAt] = when.Unix()
		return m
	}
	exp := map[string]map[string]any{
		"cus_old1":  at(old1, "acct_a", t1, true),
		"cus_gone":  at(gone, "acct_a", t1, true),
		"cus_other": at(other, "acct_b", t1, false),
		"cus_new":   at(fresh, "acct_a", t2, false),
		"cus_old2":  at(again, "acct_a", t2, false),
	}
	if diff := cmp.Diff(exp, ReadRows(t, d, customers.Name)); diff != "" {
		t.Errorf("after MarkDeletedBefore (-want +got):\n%s", diff)
	}
	// Nothing left to flag: a second sweep changes nothing.
	if n, err := sw.MarkDeletedBefore(context.Background(), customers.Name, "acct_a", t2); err != nil || n != 0 {
		t.Errorf("second MarkDeletedBefore = %d, %v; want 0", n, err)
	}
}
