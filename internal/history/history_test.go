package history_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
	_ "github.com/stripeline/stripeline/internal/dest/postgres"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/stripe"
)

// streams are the streams the tests sync: a few with events, children
// (invoice lines) and deletions.
var streams = []string{"customers", "products", "prices", "invoices", "invoices_lines", "coupons"}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pgURL makes a fresh schema on STRIPELINE_TEST_POSTGRES, dropped after
// the test; the test is skipped when the variable is unset.
func pgURL(t testing.TB) string {
	t.Helper()
	return desttest.PostgresSchema(t, "stripeline_history", "history on PostgreSQL is")
}

type fixture struct {
	emu    *emulator.Emulator
	client *stripe.Client
	dst    dest.Destination
}

func newFixture(t *testing.T, destURL string) *fixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 13, Objects: 200})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client, err := stripe.New(stripe.Config{Key: "sk_test_history", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := dest.Open(context.Background(), destURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return &fixture{emu: emu, client: client, dst: dst}
}

func (f *fixture) sync(t *testing.T) *engine.Result {
	t.Helper()
	res, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: f.dst, Pipeline: "p", Streams: streams, Concurrency: 4})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func (f *fixture) mutate(t *testing.T) {
	t.Helper()
	for _, s := range []string{"customers", "products", "invoices", "coupons"} {
		if err := f.emu.Mutate("", s, 3, 4, 2); err != nil {
			t.Fatalf("mutate %s: %v", s, err)
		}
	}
}

// snapshot is every table's rows by id, field by field, and the cursors.
type snapshot struct {
	Tables map[string]map[string]map[string]any
	State  map[string]string
}

func (f *fixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	r := f.dst.(dest.Reader)
	s := snapshot{Tables: map[string]map[string]map[string]any{}, State: map[string]string{}}
	tables, err := r.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, err := r.ReadRows(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]map[string]any{}
		for _, row := range rows {
			for k, v := range row {
				if raw, ok := v.(json.RawMessage); ok {
					row[k] = string(raw)
				}
			}
			byID[row["id"].(string)] = row
		}
		s.Tables[table] = byID
	}
	st, err := f.dst.LoadState(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range st {
		s.State[k] = string(v)
	}
	return s
}

// withoutAddedColumns drops from got the columns ref's tables lack that
// hold only NULL: a later run added them (schema evolution) and a
// rollback never drops a column.
func withoutAddedColumns(ref, got snapshot) snapshot {
	for table, rows := range got.Tables {
		known := map[string]bool{}
		for _, r := range ref.Tables[table] {
			for c := range r {
				known[c] = true
			}
		}
		for _, r := range rows {
			for c, v := range r {
				if !known[c] && v == nil {
					delete(r, c)
				}
			}
		}
	}
	return got
}

// query is a statement's answer, for as-of comparisons.
func (f *fixture) query(t *testing.T, q string) [][]any {
	t.Helper()
	_, rows, err := f.dst.(dest.Querier).Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (f *fixture) asOf(t *testing.T, at time.Time, q string) [][]any {
	t.Helper()
	_, rows, err := history.AsOf(context.Background(), f.dst, at, q)
	if err != nil {
		t.Fatalf("as of %s: %v", at.Format(time.RFC3339Nano), err)
	}
	return rows
}

var asOfQueries = []string{
	// Not SELECT *: a column a later run added (schema evolution) stays.
	"SELECT id, email, name, metadata, balance, delinquent, address, _stripeline_deleted, _stripeline_synced_at, _stripeline_version FROM customers ORDER BY id",
	"SELECT id, email, metadata, _stripeline_deleted FROM customers WHERE _stripeline_deleted = FALSE ORDER BY id",
	"SELECT i.id, COUNT(l.id) FROM invoices i LEFT JOIN invoices_lines l ON l.invoice = i.id GROUP BY i.id ORDER BY i.id",
	"SELECT * FROM products ORDER BY id",
	"SELECT * FROM coupons ORDER BY id",
}

// testRollback is the "Must show": sync → changes → sync →
// rollback equals the replica after the first sync, field by field,
// cursors included; --as-of answers match the replica at that time.
func testRollback(t *testing.T, destURL string) {
	ctx := context.Background()
	f := newFixture(t, destURL)
	first := f.sync(t)
	after1 := f.snapshot(t)
	answers1 := map[string][][]any{}
	for _, q := range asOfQueries {
		answers1[q] = f.query(t, q)
	}
	t1 := time.Now()

	f.mutate(t)
	second := f.sync(t)
	if second.Events == 0 {
		t.Fatalf("the second run applied no events")
	}
	answers2 := map[string][][]any{}
	for _, q := range asOfQueries {
		answers2[q] = f.query(t, q)
	}
	t2 := time.Now()
	f.mutate(t)
	third := f.sync(t)
	after3 := f.snapshot(t)
	if cmp.Equal(after1, after3) {
		t.Fatal("the changes changed nothing in the replica")
	}
	t3 := time.Now()

	// As of each moment, the answers are those of that moment.
	for _, q := range asOfQueries {
		if d := cmp.Diff(answers1[q], f.asOf(t, t1, q)); d != "" {
			t.Errorf("as of the first run, %s (-then +as-of):\n%s", q, d)
		}
		if d := cmp.Diff(answers2[q], f.asOf(t, t2, q)); d != "" {
			t.Errorf("as of the second run, %s (-then +as-of):\n%s", q, d)
		}
		if d := cmp.Diff(f.query(t, q), f.asOf(t, t3, q)); d != "" {
			t.Errorf("as of now, %s (-now +as-of):\n%s", q, d)
		}
	}
	if d := cmp.Diff(after3, f.snapshot(t)); d != "" {
		t.Fatalf("as-of queries changed the replica:\n%s", d)
	}

	// A dry run says what it would do and changes nothing.
	dry, err := history.Rollback(ctx, f.dst, second.RunID, history.RollbackOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Changes) == 0 || dry.ID != "" {
		t.Fatalf("dry run: %+v", dry)
	}
	if d := cmp.Diff(after3, f.snapshot(t)); d != "" {
		t.Fatalf("the dry run changed the replica:\n%s", d)
	}

	res, err := history.Rollback(ctx, f.dst, second.RunID, history.RollbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{second.RunID, third.RunID}, res.Undone); d != "" {
		t.Errorf("undone runs (-want +got):\n%s", d)
	}
	if d := cmp.Diff(dry.Changes, res.Changes); d != "" {
		t.Errorf("the dry run's changes differ from the rollback's (-dry +real):\n%s", d)
	}
	if d := cmp.Diff(after1, withoutAddedColumns(after1, f.snapshot(t))); d != "" {
		t.Fatalf("after the rollback the replica differs from the one after the first run (-first +rolled back):\n%s", d)
	}
	runs, err := f.dst.Runs(ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range runs {
		status[r.ID] = r.Status
	}
	want := map[string]string{first.RunID: "succeeded", second.RunID: sqldest.RunRolledBack, third.RunID: sqldest.RunRolledBack, res.ID: "succeeded"}
	if d := cmp.Diff(want, status); d != "" {
		t.Errorf("run history (-want +got):\n%s", d)
	}

	// Again: nothing to do.
	again, err := history.Rollback(ctx, f.dst, second.RunID, history.RollbackOptions{})
	if err != nil || !again.Already || len(again.Changes) != 0 {
		t.Fatalf("second rollback: %+v, %v", again, err)
	}
	// The as-of view of a moment before the rollback still sees that moment.
	for _, q := range asOfQueries[:2] {
		if d := cmp.Diff(answers2[q], f.asOf(t, t2, q)); d != "" {
			t.Errorf("as of the second run, after the rollback, %s (-then +as-of):\n%s", q, d)
		}
	}

	// The next run re-applies everything from the first run's cursors.
	f.sync(t)
	if !strings.HasPrefix(destURL, "mysql:") { // replicacheck's SQL is ANSI-quoted
		enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)
	}
}

func TestRollbackSQLite(t *testing.T) {
	t.Parallel()
	testRollback(t, "sqlite://"+filepath.Join(t.TempDir(), "replica.db"))
}

func TestRollbackPostgres(t *testing.T) {
	t.Parallel()
	testRollback(t, pgURL(t))
}

// A rollback is refused while a run holds the pipeline's lock.
func TestRollbackRefusedWhileLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "sqlite://"+filepath.Join(t.TempDir(), "replica.db"))
	run := f.sync(t)
	lk, err := f.dst.(dest.Locker).Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{RunID: "holder", PID: 1, Host: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	before := f.snapshot(t)
	_, err = history.Rollback(ctx, f.dst, run.RunID, history.RollbackOptions{})
	var le *dest.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("rollback while locked: %v, want a *dest.LockedError", err)
	}
	if d := cmp.Diff(before, f.snapshot(t)); d != "" {
		t.Fatalf("a refused rollback changed the replica:\n%s", d)
	}
}

// myURL makes a fresh database on STRIPELINE_TEST_MYSQL, dropped after the
// test; the test is skipped when the variable is unset.
func myURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_MYSQL")
	if base == "" {
		t.Skip("STRIPELINE_TEST_MYSQL is not set: history on MySQL is not tested")
	}
	dsn, _, err := mysql.DSN(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := "stripeline_history_" + randHex()
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("STRIPELINE_TEST_MYSQL=%s: %v", dest.Redact(base), err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestRollbackMySQL(t *testing.T) {
	t.Parallel()
	testRollback(t, myURL(t))
}
