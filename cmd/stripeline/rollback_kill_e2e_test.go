package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
)

// replicaState is every table's rows and the cursors of a replica, to
// compare field by field.
func replicaState(t *testing.T, u string) map[string]any {
	t.Helper()
	ctx := context.Background()
	d, err := dest.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := map[string]any{}
	tables, err := d.(dest.Reader).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, err := d.(dest.Reader).ReadRows(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]map[string]any{}
		for _, r := range rows {
			for k, v := range r {
				if raw, ok := v.(json.RawMessage); ok {
					r[k] = string(raw)
				}
			}
			byID[r["id"].(string)] = r
		}
		out[table] = byID
	}
	st, err := d.LoadState(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	cur := map[string]string{}
	for k, v := range st {
		cur[k] = string(v)
	}
	out["_state"] = cur
	return out
}

// runStatuses are the replica's runs by id.
func runStatuses(t *testing.T, u string) map[string]string {
	t.Helper()
	d, err := dest.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runs, err := d.Runs(context.Background(), "default", 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range runs {
		out[r.ID] = r.Status
	}
	return out
}

// newestRun is the replica's latest run.
func newestRun(t *testing.T, u string) string {
	t.Helper()
	d, err := dest.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runs, err := d.Runs(context.Background(), "default", 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	return runs[0].ID
}

// TestKillMidRollback kills `stripeline rollback` with SIGKILL while its
// transaction has put rows back but not yet committed (held by a
// PostgreSQL lock on the run history, which it updates last), and checks
// that the replica is exactly as before the rollback; a re-run then
// returns it to its state after the first sync, cursors included.
func TestKillMidRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	pgURL := pgSchemaURL(t)
	if pgURL == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the kill is placed by a PostgreSQL table lock")
	}
	emu, err := emulator.New(emulator.Config{Seed: 41, Objects: 300, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	bin := buildBinary(t)
	env := append(os.Environ(), "STRIPE_API_KEY=sk_test_e2e", "STRIPE_API_BASE="+srv.URL)
	sync := []string{"sync", "--dest", pgURL, "--streams", "customers,products,invoices", "--max-rps", "100000", "--endpoint-rps", "100000"}
	runBin(t, bin, env, sync...)
	after1 := replicaState(t, pgURL)
	for _, s := range []string{"customers", "products", "invoices"} {
		if err := emu.Mutate("", s, 3, 5, 2); err != nil {
			t.Fatal(err)
		}
	}
	runBin(t, bin, env, sync...)
	after2 := replicaState(t, pgURL)
	runs2 := runStatuses(t, pgURL)
	if cmp.Equal(after1, after2) {
		t.Fatal("the second sync changed nothing")
	}
	second := newestRun(t, pgURL)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("STRIPELINE_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := mustSchema(t, pgURL)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SHARE lets the rollback read the run history but not update it.
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, dest.RunsTable}.Sanitize()+" IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "rollback", second, "--dest", pgURL)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waiting := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !waiting; {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace s ON s.oid = c.relnamespace WHERE NOT l.granted AND c.relname = $1 AND s.nspname = $2", dest.RunsTable, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if waiting = n > 0; waiting {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the rollback ended while the run history was locked: %v\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond): // poll pg_locks again
		}
	}
	if !waiting {
		t.Fatal("the rollback never waited for the run history")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(after2, replicaState(t, pgURL)); d != "" {
		t.Fatalf("a killed rollback changed the replica (-before +after the kill):\n%s", d)
	}
	if d := cmp.Diff(runs2, runStatuses(t, pgURL)); d != "" {
		t.Fatalf("a killed rollback changed the run history:\n%s", d)
	}

	// The re-run completes it: the replica after the first sync.
	runBin(t, bin, env, "rollback", second, "--dest", pgURL)
	if d := cmp.Diff(after1, replicaState(t, pgURL)); d != "" {
		t.Fatalf("after the re-run (-first sync +rolled back):\n%s", d)
	}
	if got := runStatuses(t, pgURL)[second]; got != "rolled_back" {
		t.Fatalf("run %s: status %s, want rolled_back", second, got)
	}
	if o := runBin(t, bin, env, "rollback", second, "--dest", pgURL); !strings.Contains(o, "rolled back already") {
		t.Fatalf("a third rollback: %s", o)
	}
}
