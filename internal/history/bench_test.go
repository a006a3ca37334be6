package history_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
)

// benchHistoryRows is how many rows each pass of BenchmarkHistory writes.
const benchHistoryRows = 20_000

// historyBytes is the change log's size: its payload (the bytes of every
// column of every entry, integers as 8) on both, and on PostgreSQL also
// its size on disk with its primary key (pg_total_relation_size; 0 on
// SQLite, whose build has no dbstat).
func historyBytes(b *testing.B, d dest.Destination, sqlite bool) (payload, disk float64) {
	b.Helper()
	n := func(col string) string {
		if sqlite {
			return "COALESCE(length(CAST(" + col + " AS BLOB)), 0)"
		}
		return "COALESCE(octet_length(" + col + "::text), 0)"
	}
	q := "SELECT COALESCE(SUM(" + n("run") + " + " + n("pipeline") + " + " + n("table_name") + " + " + n("row_id") + " + " + n("op") + " + " + n("prev") + " + 24), 0) FROM " + dest.HistoryTable
	if !sqlite {
		q = "SELECT (" + q + ")::bigint, pg_total_relation_size('" + dest.HistoryTable + "')"
	}
	_, rows, err := d.(dest.Querier).Query(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	num := func(v any) float64 {
		switch x := v.(type) {
		case int64:
			return float64(x)
		case float64:
			return x
		}
		return 0
	}
	payload = num(rows[0][0])
	if !sqlite {
		disk = num(rows[0][1])
	}
	return payload, disk
}

// writePass writes every row of one version under a run, in batches of
// desttest.BenchBatch with a checkpoint each, and returns how long it took.
func writePass(b *testing.B, d dest.Destination, run string, mode dest.HistoryMode, version int) time.Duration {
	b.Helper()
	ctx := dest.WithRun(context.Background(), dest.RunContext{ID: run, Pipeline: "bench", History: mode})
	rows := make([]dest.Row, benchHistoryRows)
	for i := range rows {
		rows[i] = desttest.BenchRow(i, version)
	}
	start := time.Now()
	for s := 0; s < len(rows); s += desttest.BenchBatch {
		if err := d.Write(ctx, &dest.Batch{Table: desttest.BenchTable, Rows: rows[s : s+desttest.BenchBatch], SyncedAt: time.Now(),
			State: &dest.State{Pipeline: "bench", Stream: desttest.BenchTable.Name, Cursor: []byte(`{"n":` + strconv.Itoa(s) + `}`)}}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkHistory measures what the change log costs: a pass inserting
// benchHistoryRows customer-like rows (~1.5 KB each), then a pass changing
// three fields of every row (metadata, description, a counter), with the
// history mode off, changes or full. It reports the rows written per
// second of each pass and the change log's bytes per inserted and per
// changed row (historyBytes).
func BenchmarkHistory(b *testing.B) {
	type target struct {
		name   string
		open   func(b *testing.B) string
		sqlite bool
	}
	targets := []target{
		{"sqlite", func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "bench.db") }, true},
		{"postgres", func(b *testing.B) string { return pgURL(b) }, false},
	}
	for _, tg := range targets {
		for _, mode := range []dest.HistoryMode{dest.HistoryOff, dest.HistoryChanges, dest.HistoryFull} {
			b.Run(tg.name+"/"+string(mode), func(b *testing.B) {
				var insert, update time.Duration
				var perInsert, perUpdate, diskInsert, diskUpdate float64
				for range b.N {
					d, err := dest.Open(context.Background(), tg.open(b))
					if err != nil {
						b.Fatal(err)
					}
					insert += writePass(b, d, "bench-1", mode, 1)
					p1, d1 := historyBytes(b, d, tg.sqlite)
					update += writePass(b, d, "bench-2", mode, 2)
					p2, d2 := historyBytes(b, d, tg.sqlite)
					perInsert += p1 / benchHistoryRows
					perUpdate += (p2 - p1) / benchHistoryRows
					diskInsert += d1 / benchHistoryRows
					diskUpdate += (d2 - d1) / benchHistoryRows
					d.Close()
				}
				n := float64(b.N)
				b.ReportMetric(benchHistoryRows*n/insert.Seconds(), "insert_rows/s")
				b.ReportMetric(benchHistoryRows*n/update.Seconds(), "update_rows/s")
				b.ReportMetric(perInsert/n, "payload_B/inserted_row")
				b.ReportMetric(perUpdate/n, "payload_B/changed_row")
				if !tg.sqlite {
					b.ReportMetric(diskInsert/n, "disk_B/inserted_row")
					b.ReportMetric(diskUpdate/n, "disk_B/changed_row")
				}
			})
		}
	}
}
