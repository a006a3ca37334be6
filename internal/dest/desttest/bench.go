package desttest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// BenchOpener opens a fresh, empty destination for one benchmark.
type BenchOpener func(b *testing.B) dest.Destination

// BenchRows is how many rows one benchmark iteration writes.
const BenchRows = 100_000

// BenchBatch is the batch size of the benchmarks (the engine's default order).
const BenchBatch = 1000

// BenchTable is a customer-like table of 24 columns.
var BenchTable = func() dest.Table {
	t := dest.Table{Name: "bench_customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}}}
	t.Columns = append(t.Columns, []dest.Column{
		{Name: "object", Type: catalog.TypeString}, {Name: "address", Type: catalog.TypeJSON}, {Name: "balance", Type: catalog.TypeInteger},
		{Name: "created", Type: catalog.TypeInteger}, {Name: "currency", Type: catalog.TypeString}, {Name: "default_source", Type: catalog.TypeString},
		{Name: "delinquent", Type: catalog.TypeBoolean}, {Name: "description", Type: catalog.TypeString}, {Name: "discount", Type: catalog.TypeJSON},
		{Name: "email", Type: catalog.TypeString}, {Name: "invoice_prefix", Type: catalog.TypeString}, {Name: "invoice_settings", Type: catalog.TypeJSON},
		{Name: "livemode", Type: catalog.TypeBoolean}, {Name: "metadata", Type: catalog.TypeJSON}, {Name: "name", Type: catalog.TypeString},
		{Name: "next_invoice_sequence", Type: catalog.TypeInteger}, {Name: "phone", Type: catalog.TypeString}, {Name: "preferred_locales", Type: catalog.TypeJSON},
		{Name: "shipping", Type: catalog.TypeJSON}, {Name: "tax_exempt", Type: catalog.TypeString}, {Name: "test_clock", Type: catalog.TypeString},
		{Name: "tax_rate", Type: catalog.TypeNumber}, {Name: "order", Type: catalog.TypeString},
	}...)
	return t
}()

// BenchRow makes a realistic ~1.5 KB customer row; version changes the values.
func BenchRow(i, version int) dest.Row {
	id := fmt.Sprintf("cus_%014d", i)
	addr := json.RawMessage(fmt.Sprintf(`{"city":"Berlin","country":"DE","line1":"Hauptstraße %d","line2":null,"postal_code":"10115","state":null}`, i%1000))
	invSettings := json.RawMessage(`{"custom_fields":null,"default_payment_method":"pm_1NbQ8uLkdIwHu7ixa9Mp9ZQa","footer":null,"rendering_options":null}`)
	meta := json.RawMessage(fmt.Sprintf(`{"crm_id":"crm-%d","plan":"enterprise","segment":"emea","version":"%d","notes":"%s"}`, i, version, strings.Repeat("x", 200)))
	ship := json.RawMessage(fmt.Sprintf(`{"address":{"city":"Berlin","country":"DE","line1":"Lieferweg %d","line2":"Hinterhaus","postal_code":"10117","state":null},"name":"Customer %d","phone":"+4930123456"}`, i, i))
	vals := []any{id, "customer", addr, int64(-100 * (i % 7)), int64(1_600_000_000 + i), "eur", "card_1NbQ8uLkdIwHu7ixXYZ" + fmt.Sprint(i%97),
		i%13 == 0, fmt.Sprintf("Customer number %d, imported from the legacy billing system (v%d)", i, version), nil,
		fmt.Sprintf("customer%d@example.com", i), fmt.Sprintf("INV%06X", i), invSettings, false, meta, fmt.Sprintf("Customer %d GmbH", i),
		int64(version + 1), "+49 30 1234567", json.RawMessage(`["de-DE","en"]`), ship, "none", nil, 0.19, "first"}
	raw, _ := json.Marshal(map[string]any{"id": id, "object": "customer", "address": addr, "metadata": meta, "shipping": ship, "invoice_settings": invSettings, "name": vals[15], "email": vals[10]})
	return dest.Row{ID: id, Values: vals, Raw: raw}
}

// benchRows makes every row of one pass up front, so that building them is
// not measured.
func benchRows(version int) []dest.Row {
	rows := make([]dest.Row, BenchRows)
	for i := range rows {
		rows[i] = BenchRow(i, version)
	}
	return rows
}

func benchWrite(b *testing.B, d dest.Destination, all []dest.Row) {
	ctx := context.Background()
	for start := 0; start < BenchRows; start += BenchBatch {
		rows := all[start : start+BenchBatch]
		if err := d.Write(ctx, &dest.Batch{Table: BenchTable, Rows: rows, SyncedAt: time.Now(),
			State: &dest.State{Pipeline: "bench", Stream: BenchTable.Name, Cursor: json.RawMessage(fmt.Sprint(start))}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchInsert measures inserting BenchRows new rows per iteration, in
// batches of BenchBatch with a checkpoint each, and reports rows/s.
func BenchInsert(b *testing.B, open BenchOpener) {
	var elapsed time.Duration
	rows := benchRows(1)
	for b.Loop() {
		b.StopTimer()
		d := open(b)
		if err := d.Migrate(context.Background(), BenchTable); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		benchWrite(b, d, rows)
		elapsed += time.Since(t0)
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(BenchRows*b.N)/elapsed.Seconds(), "rows/s")
}

// BenchUpdate measures upserting BenchRows rows that all exist already.
func BenchUpdate(b *testing.B, open BenchOpener) {
	d := open(b)
	defer d.Close()
	if err := d.Migrate(context.Background(), BenchTable); err != nil {
		b.Fatal(err)
	}
	benchWrite(b, d, benchRows(1))
	passes := [][]dest.Row{benchRows(2), benchRows(3)}
	var elapsed time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		benchWrite(b, d, passes[i%2])
		elapsed += time.Since(t0)
		i++
	}
	b.ReportMetric(float64(BenchRows*b.N)/elapsed.Seconds(), "rows/s")
}

// MigrateAndWrite migrates BenchTable, with one more column when i is odd,
// and writes one row of id i, as one of several first runs racing on a new
// destination would.
func MigrateAndWrite(ctx context.Context, d dest.Destination, i int) error {
	tb := BenchTable
	row := BenchRow(i, i)
	if i%2 == 1 {
		tb.Columns = append(append([]dest.Column(nil), tb.Columns...), dest.Column{Name: "extra", Type: catalog.TypeString})
		row.Values = append(append([]any(nil), row.Values...), "x")
	}
	if err := d.Migrate(ctx, tb); err != nil {
		return err
	}
	return d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{row}})
}
