package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/postgres"
	"github.com/stripeline/stripeline/internal/emulator"
)

// writeGate holds every write after the first few: the test learns when
// one is held, kills the process that sent it, and then lets the held
// writes through to the emulator, as a request Stripe received whose
// answer never reached the client.
type writeGate struct {
	mu      sync.Mutex
	pass    int // writes still let through; -1 lets every write through
	held    chan struct{}
	release chan struct{}
	once    sync.Once
	inner   sync.WaitGroup
	writes  int
}

func newWriteGate(pass int) *writeGate {
	return &writeGate{pass: pass, held: make(chan struct{}), release: make(chan struct{})}
}

func (g *writeGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		g.mu.Lock()
		g.writes++
		hold := g.pass == 0
		if g.pass > 0 {
			g.pass--
		}
		if hold {
			g.inner.Add(1)
		}
		g.mu.Unlock()
		if hold {
			defer g.inner.Done()
			g.once.Do(func() { close(g.held) })
			<-g.release
			// The client is gone; the write still happens.
			h.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.Background()))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// open lets every write through from now on and waits for the held ones.
func (g *writeGate) open() {
	g.mu.Lock()
	g.pass = -1
	g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
	g.inner.Wait()
}

func (g *writeGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writes
}

func runBin(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stripeline %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKillMidRestoreToStripe kills `stripeline restore --to-stripe` with
// SIGKILL while writes are in flight (one of them reaches the account
// after the kill), re-runs it, and checks that every deleted object was
// re-created exactly once, every change reverted, and that one more run
// sends no write at all.
func TestKillMidRestoreToStripe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	emu, err := emulator.New(emulator.Config{Seed: 31, Objects: 300, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	var gate struct {
		sync.Mutex
		g *writeGate
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gate.Lock()
		g := gate.g
		gate.Unlock()
		if g == nil {
			emu.ServeHTTP(w, r)
			return
		}
		g.wrap(emu).ServeHTTP(w, r)
	}))
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	env := append(os.Environ(), "STRIPE_API_KEY=sk_test_e2e", "STRIPE_API_BASE="+srv.URL)
	db := "sqlite://" + filepath.Join(dir, "r.db")
	backups := filepath.Join(dir, "backups")
	streams := "customers,coupons"
	runBin(t, bin, env, "sync", "--dest", db, "--streams", streams, "--max-rps", "100000", "--endpoint-rps", "100000")
	runBin(t, bin, env, "backup", "create", "--dest", db, "--to", backups)
	snap, err := backup.Open(filepath.Join(backups, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	deletedBefore := map[string]bool{}
	for _, s := range []string{"customers", "coupons"} {
		for _, id := range emu.DeletedIDs("", s) {
			deletedBefore[id] = true
		}
	}
	// Metadata changes and deletes on the account.
	if err := emu.Mutate("", "customers", 0, 10, 12); err != nil {
		t.Fatal(err)
	}
	if err := emu.Mutate("", "coupons", 0, 3, 3); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, s := range []string{"customers", "coupons"} {
		for _, id := range emu.DeletedIDs("", s) {
			if !deletedBefore[id] {
				deleted = append(deleted, id)
			}
		}
	}
	if len(deleted) < 10 {
		t.Fatalf("only %d objects deleted", len(deleted))
	}

	g := newWriteGate(6)
	gate.Lock()
	gate.g = g
	gate.Unlock()
	args := []string{"restore", filepath.Join(backups, "latest"), "--to-stripe", "--streams", streams, "--concurrency", "4", "--max-rps", "100000"}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-g.held:
	case err := <-exited:
		t.Fatalf("restore finished before the kill point: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
		t.Fatal("restore never reached its seventh write")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	g.open()
	t.Logf("killed after %d writes (the held ones reached the account after the kill)", g.count())

	// The re-run completes: no duplicates, everything back.
	runBin(t, bin, env, append(args, "--report", filepath.Join(dir, "report.csv"))...)
	marks := map[string]int{}
	for _, s := range []string{"customers", "coupons"} {
		for _, raw := range emu.Objects("", s) {
			var o struct {
				Metadata map[string]string `json:"metadata"`
			}
			_ = json.Unmarshal(raw, &o)
			if m := o.Metadata[backup.RestoredFromKey]; m != "" {
				marks[m]++
			}
		}
	}
	for _, id := range deleted {
		if marks[id] != 1 {
			t.Errorf("deleted %s re-created %d times, want once", id, marks[id])
		}
	}
	if len(marks) != len(deleted) {
		t.Errorf("%d objects carry a restored-from mark, %d were deleted", len(marks), len(deleted))
	}
	d := runBin(t, bin, env, "diff", snap.Dir, "stripe", "--streams", streams, "--updatable", "--format", "json")
	var res backup.DiffResult
	if err := json.Unmarshal([]byte(d), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Empty() {
		t.Fatalf("the account differs from the snapshot after the re-run:\n%s", d)
	}
	// One more run sends nothing.
	g2 := newWriteGate(-1)
	gate.Lock()
	gate.g = g2
	gate.Unlock()
	if o := runBin(t, bin, env, args...); !strings.Contains(o, "nothing sent") || g2.count() != 0 {
		t.Fatalf("third run sent %d writes:\n%s", g2.count(), o)
	}
}

// TestKillMidBackup kills `stripeline backup create` with SIGKILL while
// it reads a PostgreSQL replica (held at one table by a lock the test
// takes), then checks that nothing looks like a snapshot, that a re-run
// writes a complete one (the crashed one's leftovers removed), and that it
// holds every row exactly once.
func TestKillMidBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	pgURL := pgSchemaURL(t)
	if pgURL == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the kill is placed by a PostgreSQL table lock")
	}
	emu, err := emulator.New(emulator.Config{Seed: 37, Objects: 300, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	env := append(os.Environ(), "STRIPE_API_KEY=sk_test_e2e", "STRIPE_API_BASE="+srv.URL)
	backups := filepath.Join(dir, "backups")
	runBin(t, bin, env, "sync", "--dest", pgURL, "--streams", "charges,customers,invoices,products", "--max-rps", "100000", "--endpoint-rps", "100000")

	// Hold the customers table: the backup writes charges first, then
	// blocks reading customers.
	ctx := context.Background()
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := mustSchema(t, pgURL)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "customers"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "backup", "create", "--dest", pgURL, "--to", backups)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the backup's session waits for the lock.
	waiting := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !waiting; {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace s ON s.oid = c.relnamespace WHERE NOT l.granted AND c.relname = 'customers' AND s.nspname = $1", schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if waiting = n > 0; waiting {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("backup ended while the table was locked: %v\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond): // poll pg_locks again
		}
	}
	if !waiting {
		t.Fatal("the backup never waited for the customers table")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := backup.List(backups)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !es[0].Incomplete {
		t.Fatalf("after the kill: %+v, want one incomplete entry", es)
	}
	if _, err := backup.Open(filepath.Join(backups, "latest")); err == nil {
		t.Fatal("a killed backup left a snapshot that opens")
	}

	runBin(t, bin, env, "backup", "create", "--dest", pgURL, "--to", backups)
	es, _ = backup.List(backups)
	if len(es) != 1 || es[0].Incomplete || es[0].Kind != "full" {
		t.Fatalf("after the re-run: %+v, want one full snapshot", es)
	}
	runBin(t, bin, env, "backup", "verify", filepath.Join(backups, "latest"))
	snap, err := backup.Open(filepath.Join(backups, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := dest.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, stream := range snap.Streams() {
		seen := map[string]bool{}
		for row, err := range snap.Rows(ctx, stream) {
			if err != nil {
				t.Fatal(err)
			}
			id := row["id"].(string)
			if seen[id] {
				t.Fatalf("%s %s twice in the snapshot", stream, id)
			}
			seen[id] = true
		}
		n := 0
		for _, err := range src.(dest.Reader).Rows(ctx, stream) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if len(seen) != n || n == 0 {
			t.Errorf("%s: %d rows in the snapshot, %d in the replica", stream, len(seen), n)
		}
	}
	d := runBin(t, bin, env, "diff", snap.Dir, pgURL, "--format", "json")
	var res backup.DiffResult
	if err := json.Unmarshal([]byte(d), &res); err != nil || !res.Empty() {
		t.Fatalf("snapshot vs replica: %v\n%s", err, d)
	}
}

func mustSchema(t *testing.T, u string) string {
	t.Helper()
	i := strings.Index(u, "schema=")
	if i < 0 {
		t.Fatalf("no schema in %s", u)
	}
	s := u[i+len("schema="):]
	if j := strings.IndexByte(s, '&'); j >= 0 {
		s = s[:j]
	}
	return s
}
