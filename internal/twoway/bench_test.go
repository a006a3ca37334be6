package twoway_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

// timedPusher measures the push part of a run.
type timedPusher struct {
	p       engine.Pusher
	elapsed time.Duration
}

func (t *timedPusher) Push(ctx context.Context, run *engine.PushRun) (any, error) {
	start := time.Now()
	rep, err := t.p.Push(ctx, run)
	t.elapsed = time.Since(start)
	return rep, err
}

// BenchmarkPush1000 pushes 1,000 changed customer rows (a name each) from
// SQLite to the emulator at Stripe's test-mode rate limits (100 requests/s,
// 25/s per endpoint) with 300 ms per request, and reports the push's
// requests, seconds and the 429s met. Run it once:
//
//	go test -run '^$' -bench Push1000 -benchtime 1x ./internal/twoway/
func BenchmarkPush1000(b *testing.B) {
	const rows = 1000
	ctx := context.Background()
	emu, err := emulator.New(emulator.Config{Seed: 11, Objects: 20000, ConnectedAccounts: -1, TestClocks: -1,
		RPS: 100, EndpointRPS: 25, Latency: 300 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := stripe.New(stripe.Config{Key: "sk_test_bench", APIBase: srv.URL, GlobalRPS: 95, EndpointRPS: 24})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "replica.db")
	d, err := dest.Open(ctx, "sqlite://"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	user, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer user.Close()
	cfg := &twoway.Config{Streams: map[string][]string{"customers": {"email", "name", "metadata"}}}
	run := func() (*twoway.Report, time.Duration) {
		p, err := twoway.New(cfg, c, d, nil)
		if err != nil {
			b.Fatal(err)
		}
		tp := &timedPusher{p: p}
		res, err := engine.Sync(ctx, engine.Options{Client: c, Dest: d, Pipeline: "bench", Streams: []string{"customers"}, TwoWay: cfg.EngineFields(), Push: tp, Concurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		rep, _ := res.TwoWay.(*twoway.Report)
		return rep, tp.elapsed
	}
	run()
	objs := emu.Objects(emu.MainAccountID(), "customers")
	if len(objs) < rows {
		b.Fatalf("only %d customers", len(objs))
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		tx, err := user.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range objs[:rows] {
			id := gjson.GetBytes(o, "id").Str
			if _, err := tx.Exec("UPDATE customers SET name = ? WHERE id = ?", fmt.Sprintf("bench %d %s", i, id), id); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		limited := emu.Stats().RateLimited
		b.StartTimer()
		rep, elapsed := run()
		b.StopTimer()
		if rep.Updated != rows {
			b.Fatalf("updated %d, want %d (%+v)", rep.Updated, rows, rep.Rejected)
		}
		b.ReportMetric(float64(rep.Requests), "requests")
		b.ReportMetric(elapsed.Seconds(), "push-s")
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(emu.Stats().RateLimited-limited), "429s")
	}
}

// BenchmarkScan100k times the push of a run that finds nothing to send in
// a SQLite customers table of 100,000 rows (the database's edits are found
// by reading the two-way tables), after a first two-way run adopted the
// rows' values as remembered:
//
//	go test -run '^$' -bench Scan100k -benchtime 1x ./internal/twoway/
func BenchmarkScan100k(b *testing.B) {
	const rows = 100_000
	ctx := context.Background()
	emu, err := emulator.New(emulator.Config{Seed: 12, Objects: 200, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := stripe.New(stripe.Config{Key: "sk_test_bench", APIBase: srv.URL, GlobalRPS: 100000, EndpointRPS: 100000})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "replica.db")
	d, err := dest.Open(ctx, "sqlite://"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	cfg := &twoway.Config{Streams: map[string][]string{"customers": {"email", "name", "metadata"}}}
	run := func() (*twoway.Report, time.Duration) {
		p, err := twoway.New(cfg, c, d, nil)
		if err != nil {
			b.Fatal(err)
		}
		tp := &timedPusher{p: p}
		res, err := engine.Sync(ctx, engine.Options{Client: c, Dest: d, Pipeline: "bench", Streams: []string{"customers"}, TwoWay: cfg.EngineFields(), Push: tp})
		if err != nil {
			b.Fatal(err)
		}
		rep, _ := res.TwoWay.(*twoway.Report)
		return rep, tp.elapsed
	}
	run()
	user, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer user.Close()
	tx, err := user.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		if _, err := tx.Exec(`INSERT INTO customers (id, email, name, metadata, created) VALUES (?, ?, ?, '{"k":"v"}', 1700000000)`,
			fmt.Sprintf("cus_bench%07d", i), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	_, adopt := run()
	b.Logf("the first two-way run adopted %d rows' values in %.1f s", rows, adopt.Seconds())
	b.ResetTimer()
	for range b.N {
		rep, elapsed := run()
		if rep.Updated != 0 {
			b.Fatalf("pushed %d", rep.Updated)
		}
		b.ReportMetric(elapsed.Seconds(), "scan-s")
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	}
}
