package engine_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/files"
	"github.com/stripeline/stripeline/internal/dest/mysql"
	_ "github.com/stripeline/stripeline/internal/dest/postgres"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
)

// replica is one destination under comparison.
type replica struct {
	name string
	dst  dest.Destination
}

// pgURL makes a fresh schema on STRIPELINE_TEST_POSTGRES, dropped after
// the test, or returns "" when the variable is unset.
func pgURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Log("STRIPELINE_TEST_POSTGRES is not set: PostgreSQL left out of the comparison")
		return ""
	}
	ctx := context.Background()
	schema := "stripeline_engine_" + randHex()
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// myURL makes a fresh database on STRIPELINE_TEST_MYSQL, dropped after
// the test, or returns "" when the variable is unset.
func myURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_MYSQL")
	if base == "" {
		t.Log("STRIPELINE_TEST_MYSQL is not set: MySQL left out of the comparison")
		return ""
	}
	dsn, _, err := mysql.DSN(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := "stripeline_engine_" + randHex()
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("STRIPELINE_TEST_MYSQL=%s: %v", dest.Redact(base), err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// comparableRows reads a table through dest.Reader, normalised, without
// the write time and the version read from it (each replica was written at
// its own moment).
func comparableRows(t *testing.T, d dest.Destination, table string) map[string]map[string]any {
	t.Helper()
	rows := desttest.ReadRows(t, d, table)
	for _, r := range rows {
		delete(r, dest.ColSyncedAt)
		delete(r, dest.ColVersion)
	}
	return rows
}

// assertSameRows compares every table of every replica with the SQLite one.
func assertSameRows(t *testing.T, phase string, ref replica, others []replica, tables []string) {
	t.Helper()
	for _, table := range tables {
		want := comparableRows(t, ref.dst, table)
		for _, o := range others {
			got := comparableRows(t, o.dst, table)
			if reflect.DeepEqual(want, got) {
				continue // cmp.Diff is slow on large equal tables
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: table %s of %s differs from SQLite's (-sqlite +%s):\n%s", phase, table, o.name, o.name, truncateDiff(diff))
			}
		}
	}
}

func truncateDiff(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "\n…"
	}
	return s
}

// TestDestinationsAgree syncs one emulated account into SQLite and every
// other destination, then changes it and syncs incrementally, and checks
// after each run that every table holds the same rows everywhere: ids,
// every column's value and the deletion flag.
func TestDestinationsAgree(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 21, Objects: 2000, ConnectedAccounts: -1})
	ctx := context.Background()
	urls := map[string]string{
		"csv":     "csv://" + filepath.Join(t.TempDir(), "csv"),
		"jsonl":   "jsonl://" + filepath.Join(t.TempDir(), "jsonl"),
		"parquet": "parquet://" + filepath.Join(t.TempDir(), "parquet"),
	}
	if u := pgURL(t); u != "" {
		urls["postgres"] = u
	}
	if u := myURL(t); u != "" {
		urls["mysql"] = u
	}
	var names []string
	for n := range urls {
		names = append(names, n)
	}
	sort.Strings(names)
	ref := replica{name: "sqlite", dst: f.dst}
	var others []replica
	for _, n := range names {
		d, err := dest.Open(ctx, urls[n])
		if err != nil {
			t.Fatalf("open %s: %v", n, err)
		}
		t.Cleanup(func() { d.Close() })
		others = append(others, replica{name: n, dst: d})
	}
	// The streams the emulator fills (children included) are synced and
	// every one of their tables compared.
	tables := enginetest.SeededStreams(t, f.emu, "")

	syncAll := func(phase string) {
		t.Helper()
		all := append([]replica{ref}, others...)
		results := make([]*engine.Result, len(all))
		errs := make([]error, len(all))
		var wg sync.WaitGroup
		for i, r := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				results[i], errs[i] = engine.Sync(ctx, engine.Options{Client: f.client, Dest: r.dst, Streams: tables, Concurrency: 4, BatchRows: 400})
				t.Logf("%s: %s in %v: %s", phase, r.name, time.Since(t0).Round(time.Millisecond), rowCounts(results[i]))
			}()
		}
		wg.Wait()
		for i, r := range all {
			if errs[i] != nil {
				t.Fatalf("%s: sync into %s: %v", phase, r.name, errs[i])
			}
		}
		// Every replica read the same account: the same counts.
		for i, r := range all[1:] {
			if a, b := rowCounts(results[0]), rowCounts(results[i+1]); a != b {
				t.Logf("%s: rows written differ: sqlite %s, %s %s", phase, a, r.name, b)
			}
		}
	}

	syncAll("backfill")
	t0 := time.Now()
	assertSameRows(t, "backfill", ref, others, tables)
	t.Logf("compared in %v", time.Since(t0).Round(time.Millisecond))
	if live := comparableRows(t, ref.dst, "customers"); len(live) < 50 {
		t.Fatalf("only %d customers replicated", len(live))
	}

	for _, s := range []string{"customers", "invoices", "subscriptions"} {
		if err := f.emu.Mutate("", s, 5, 8, 3); err != nil {
			t.Fatalf("mutate %s: %v", s, err)
		}
	}
	syncAll("incremental")
	assertSameRows(t, "incremental", ref, others, tables)
	// The comparison saw the changes: some rows are flagged deleted.
	deleted := 0
	for _, r := range comparableRows(t, ref.dst, "customers") {
		if r[dest.ColDeleted] == true {
			deleted++
		}
	}
	if deleted == 0 {
		t.Error("no customer is flagged deleted after the deletes")
	}
}

func rowCounts(res *engine.Result) string {
	var parts []string
	for _, s := range res.Streams {
		if s.Rows > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s.Stream, s.Rows))
		}
	}
	return strings.Join(parts, " ")
}

// fullCounter is a files destination that records BeginFull calls and can
// be made to fail its writes after a number of them.
type fullCounter struct {
	*files.Destination
	mu        sync.Mutex
	begun     map[string]int
	failTable string // writes of rows to this table fail after failAfter of them
	failAfter int
	writes    int
}

func (c *fullCounter) BeginFull(ctx context.Context, table string) error {
	c.mu.Lock()
	c.begun[table]++
	c.mu.Unlock()
	return c.Destination.BeginFull(ctx, table)
}

var errInjected = errors.New("injected write failure")

func (c *fullCounter) Write(ctx context.Context, b *dest.Batch) error {
	c.mu.Lock()
	fail := false
	if c.failTable != "" && b.Table.Name == c.failTable && len(b.Rows) > 0 {
		c.writes++
		fail = c.writes > c.failAfter
	}
	c.mu.Unlock()
	if fail {
		return errInjected
	}
	return c.Destination.Write(ctx, b)
}

func (c *fullCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.begun
	c.begun = map[string]int{}
	return out
}

func openCounter(t *testing.T, dir string) *fullCounter {
	t.Helper()
	d, err := files.Open(context.Background(), files.JSONL, dir)
	if err != nil {
		t.Fatal(err)
	}
	return &fullCounter{Destination: d, begun: map[string]int{}}
}

// dataFiles lists a table's data files (base and parts) in dir.
func dataFiles(t *testing.T, dir, table string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if n == table+".jsonl" || strings.HasPrefix(n, table+".part-") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TestFullRefreshStartsOneGeneration checks that the engine calls BeginFull
// once per rewritten table: two --full-refresh syncs into a file
// destination leave one generation of files, an incremental run only adds
// part files, and neither the incremental run nor a resumed backfill
// starts a generation.
func TestFullRefreshStartsOneGeneration(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 5, Objects: 800, ConnectedAccounts: -1})
	dir := filepath.Join(t.TempDir(), "out")
	streams := []string{"customers", "invoices", "invoices_lines", "products"}
	run := func(d dest.Destination, full bool) (*engine.Result, error) {
		return engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: d, Streams: streams, FullRefresh: full, BatchRows: 20, Concurrency: 4})
	}
	c := openCounter(t, dir)
	if _, err := run(c, false); err != nil {
		t.Fatal(err)
	}
	begun := c.reset()
	for _, s := range streams {
		if begun[s] != 1 {
			t.Errorf("first backfill: BeginFull(%s) called %d times, want 1 (all: %v)", s, begun[s], begun)
		}
	}
	first := dataFiles(t, dir, "customers")
	if len(first) < 3 {
		t.Fatalf("customers written in %d files %v; the test needs several", len(first), first)
	}
	rowsBefore := comparableRows(t, c, "customers")

	for i := 0; i < 2; i++ {
		if _, err := run(c, true); err != nil {
			t.Fatal(err)
		}
		if begun := c.reset(); begun["customers"] != 1 || begun["invoices_lines"] != 1 {
			t.Errorf("--full-refresh: BeginFull calls %v, want one per table", begun)
		}
	}
	second := dataFiles(t, dir, "customers")
	for _, n := range second {
		for _, o := range first {
			if n == o && strings.Contains(n, ".part-") {
				t.Errorf("part file %s of the first generation survived two full refreshes", n)
			}
		}
	}
	if len(second) > len(first)+1 {
		t.Errorf("after two full refreshes customers has %d files %v, the first sync wrote %d", len(second), second, len(first))
	}
	if diff := cmp.Diff(rowsBefore, comparableRows(t, c, "customers")); diff != "" {
		t.Errorf("rows after the full refreshes differ (-before +after):\n%s", truncateDiff(diff))
	}

	// An incremental run adds part files and starts no generation.
	if err := f.emu.Mutate("", "customers", 3, 3, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := run(c, false); err != nil {
		t.Fatal(err)
	}
	if begun := c.reset(); len(begun) != 0 {
		t.Errorf("incremental run called BeginFull: %v", begun)
	}
	third := dataFiles(t, dir, "customers")
	if len(third) <= len(second) {
		t.Errorf("incremental run did not add a part file: %v then %v", second, third)
	}
	for _, n := range second {
		if !contains(third, n) {
			t.Errorf("incremental run removed %s", n)
		}
	}

	// A backfill that failed part-way resumes without a new generation.
	dir2 := filepath.Join(t.TempDir(), "resume")
	c2 := openCounter(t, dir2)
	c2.failTable, c2.failAfter = "invoices", 2
	// Monthly windows make one page per month, so the backfill commits
	// several batches before the injected failure.
	windowed := func(d dest.Destination) (*engine.Result, error) {
		return engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: d, Streams: streams, BatchRows: 5, Concurrency: 2,
			StartDate: f.emu.Now().AddDate(-4, 0, 0), WindowDays: 30})
	}
	if _, err := windowed(c2); !errors.Is(err, errInjected) {
		t.Fatalf("the failing run returned %v", err)
	}
	saved, err := c2.LoadState(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	resuming := map[string]bool{}
	for stream, raw := range saved {
		var st struct{ Phase string }
		if json.Unmarshal(raw, &st) == nil && st.Phase == "backfill" {
			resuming[stream] = true
		}
	}
	if !resuming["invoices"] {
		t.Fatalf("invoices were not left mid-backfill: state %s", saved["invoices"])
	}
	c2.reset()
	c2.failTable = ""
	if _, err := windowed(c2); err != nil {
		t.Fatal(err)
	}
	begun = c2.reset()
	for s := range resuming {
		if begun[s] != 0 {
			t.Errorf("resumed backfill of %s called BeginFull", s)
		}
	}
	// Customers deleted before the second replica's backfill are listed no
	// more: compare the live rows.
	for _, table := range []string{"customers", "invoices", "invoices_lines"} {
		if diff := cmp.Diff(liveRows(t, c, table), liveRows(t, c2, table)); diff != "" {
			t.Errorf("%s: resumed replica differs from the uninterrupted one (-uninterrupted +resumed):\n%s", table, truncateDiff(diff))
		}
	}

	// An events cursor past Stripe's 30-day retention re-reads the event
	// streams in full: a new generation, once per table.
	f.emu.Advance(31 * 24 * time.Hour)
	if err := f.emu.Mutate("", "customers", 1, 1, 0); err != nil { // an event at the new time
		t.Fatal(err)
	}
	c.reset()
	res, err := run(c, false)
	if err != nil {
		t.Fatal(err)
	}
	begun = c.reset()
	if begun["customers"] != 1 || begun["invoices"] != 1 {
		t.Errorf("expired events cursor: BeginFull calls %v (notes %q), want customers and invoices once", begun, res.Notes)
	}
	if got := dataFiles(t, dir, "customers"); len(got) >= len(third) || contains(got, third[len(third)-1]) {
		t.Errorf("expired-cursor re-read kept the earlier generation's parts: %v then %v", third, got)
	}
}

func liveRows(t *testing.T, d dest.Destination, table string) map[string]map[string]any {
	t.Helper()
	rows := comparableRows(t, d, table)
	for id, r := range rows {
		if r[dest.ColDeleted] == true {
			delete(rows, id)
		}
	}
	return rows
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
