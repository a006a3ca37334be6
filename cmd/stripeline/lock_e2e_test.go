package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/filelock"
	"github.com/stripeline/stripeline/internal/dest/mysql"
	_ "github.com/stripeline/stripeline/internal/dest/postgres"
	"github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/enginetest"
)

// gate holds the emulator's answers while it is shut, so that a run that
// holds the lock is certainly still running while another one starts.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// lockStreams are the streams the two-runs test syncs: a few dense ones,
// with a child list, keep it to seconds.
var lockStreams = []string{"charges", "customers", "invoices", "invoices_lines", "prices", "products", "subscriptions"}

// lockPlace is one destination of the two-runs test.
type lockPlace struct {
	name string
	url  string
	// compareURL, when set, opens the replica for enginetest's
	// comparison, whose SQL quotes names the ANSI way.
	compareURL string
	// holderPID reads the pid recorded by the pipeline's lock holder
	// (0 when none is recorded).
	holderPID func(ctx context.Context, d dest.Destination) (int, error)
}

// TestTwoSyncsOfOnePipeline starts real `stripeline sync` processes of one
// pipeline together on one SQLite file, one PostgreSQL schema and one MySQL
// database: the second is refused at once with one sentence naming the
// first (pid, run id, host), a third with --wait waits and then runs, no
// live row ends flagged deleted; a holder killed with SIGKILL frees the
// lock at once and the next run proceeds.
func TestTwoSyncsOfOnePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "replica.db")
	places := []lockPlace{{
		name: "sqlite", url: "sqlite://" + db,
		holderPID: func(context.Context, dest.Destination) (int, error) {
			h, err := filelock.ReadHolder(sqlite.LockPath(db, "default"))
			if errors.Is(err, os.ErrNotExist) {
				return 0, nil
			}
			if err != nil {
				return 0, nil // being written: look again
			}
			return h.PID, nil
		},
	}}
	if u := pgSchemaURL(t); u != "" {
		places = append(places, lockPlace{name: "postgres", url: u, holderPID: sqlHolderPID})
	}
	if u := myDatabaseURL(t); u != "" {
		places = append(places, lockPlace{name: "mysql", url: u, holderPID: sqlHolderPID,
			compareURL: u + "?sql_mode=" + url.QueryEscape("'ANSI_QUOTES'")})
	}
	for _, p := range places {
		t.Run(p.name, func(t *testing.T) { testTwoSyncs(t, bin, p) })
	}
}

// sqlHolderPID reads _stripeline_locks through the destination's Query.
func sqlHolderPID(ctx context.Context, d dest.Destination) (int, error) {
	_, rows, err := d.(dest.Querier).Query(ctx, "SELECT pid FROM "+dest.LocksTable+" WHERE pipeline = 'default'")
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	n, ok := rows[0][0].(int64)
	if !ok {
		return 0, fmt.Errorf("pid %v (%T)", rows[0][0], rows[0][0])
	}
	return int(n), nil
}

func testTwoSyncs(t *testing.T, bin string, p lockPlace) {
	emu, err := emulator.New(emulator.Config{Seed: 9, Objects: 2000})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	srv := httptest.NewServer(g.wrap(emu))
	defer srv.Close()
	defer g.release() // handlers blocked at a shut gate let the server close
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := append(os.Environ(), "STRIPE_API_KEY=sk_test_lock_e2e", "STRIPE_API_BASE="+srv.URL, "STRIPELINE_CONFIG=")
	start := func(extra ...string) (*exec.Cmd, *strings.Builder, <-chan string) {
		args := append([]string{"sync", "--dest", p.url, "--streams", strings.Join(lockStreams, ","),
			"--max-rps", "100000", "--endpoint-rps", "100000", "--concurrency", "8"}, extra...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		cmd.Dir = t.TempDir()
		var out strings.Builder
		cmd.Stdout = &out
		pr, pw := io.Pipe()
		cmd.Stderr = pw
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				default: // the test reads the first lines only
				}
			}
			close(lines)
		}()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			<-ctx.Done()
			pw.Close()
		}()
		t.Cleanup(func() { pw.Close() })
		return cmd, &out, lines
	}
	wait := func(cmd *exec.Cmd) int {
		t.Helper()
		err := cmd.Wait()
		cmd.Stderr.(*io.PipeWriter).Close()
		if ctx.Err() != nil {
			t.Fatalf("%v: no exit before the test's deadline", cmd.Args)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		return 0
	}
	// stderrOf collects what is left of a process's stderr.
	stderrOf := func(lines <-chan string) string {
		var b strings.Builder
		for l := range lines {
			b.WriteString(l + "\n")
		}
		return b.String()
	}

	probe, err := dest.Open(ctx, p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	// heldBy waits until the lock holder recorded is pid.
	heldBy := func(pid int) {
		t.Helper()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			got, err := p.holderPID(ctx, probe)
			if err == nil && got == pid {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("pid %d never held the lock (last seen %d, %v)", pid, got, err)
			case <-tick.C:
			}
		}
	}

	// A takes the lock; the shut gate keeps it running.
	g.shut()
	a, aOut, aErr := start()
	heldBy(a.Process.Pid)

	// B, started while A runs, is refused at once naming A.
	b, _, bErr := start()
	if code := wait(b); code != 1 {
		t.Fatalf("second sync exit %d, want 1:\n%s", code, stderrOf(bErr))
	}
	msg := stderrOf(bErr)
	host, _ := os.Hostname()
	for _, part := range []string{"pipeline default is being synced by run ", fmt.Sprintf("(pid %d on host %s, since ", a.Process.Pid, host), "wait for it to finish or pass --wait"} {
		if !strings.Contains(msg, part) {
			t.Errorf("second sync's message does not say %q:\n%s", part, msg)
		}
	}
	if n := strings.Count(strings.TrimSpace(msg), "\n"); n != 0 {
		t.Errorf("second sync said more than one line:\n%s", msg)
	}

	// C waits for A with --wait, and runs once A is done.
	c, cOut, cErr := start("--wait")
	for line := range cErr {
		if strings.Contains(line, "waiting for another run of the pipeline to finish") {
			if !strings.Contains(line, fmt.Sprintf("holder_pid=%d", a.Process.Pid)) {
				t.Errorf("C waits for the wrong holder: %s", line)
			}
			break
		}
	}
	g.release()
	if code := wait(a); code != 0 {
		t.Fatalf("first sync exit %d:\n%s\n%s", code, aOut, stderrOf(aErr))
	}
	if code := wait(c); code != 0 {
		t.Fatalf("waiting sync exit %d:\n%s\n%s", code, cOut, stderrOf(cErr))
	}
	if !strings.Contains(aOut.String(), "succeeded") || !strings.Contains(cOut.String(), "succeeded") {
		t.Errorf("summaries:\n%s\n%s", aOut, cOut)
	}
	compare := probe
	if p.compareURL != "" {
		if compare, err = dest.Open(ctx, p.compareURL); err != nil {
			t.Fatal(err)
		}
		defer compare.Close()
	}
	streams := lockStreams
	enginetest.AssertReplicaEqualsAccount(t, compare.(dest.Querier), emu, "", streams)

	// D holds the lock and is killed with SIGKILL mid-run.
	g.shut()
	d, _, _ := start("--full-refresh")
	heldBy(d.Process.Pid)
	if err := d.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(d)
	g.release()
	// The lock died with D: the server (or the kernel) released it.
	l, err := probe.(dest.Locker).Lock(ctx, dest.LockRequest{Pipeline: "default", Holder: dest.Holder{Pipeline: "default", Host: host, PID: os.Getpid(), RunID: "probe", Since: time.Now()}, Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("the lock outlived its killed holder: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	// So the next run proceeds without waiting, and repairs the replica.
	e, eOut, eErr := start()
	if code := wait(e); code != 0 {
		t.Fatalf("sync after the kill: exit %d:\n%s\n%s", code, eOut, stderrOf(eErr))
	}
	enginetest.AssertReplicaEqualsAccount(t, compare.(dest.Querier), emu, "", streams)
}

// pgSchemaURL makes a fresh schema on STRIPELINE_TEST_POSTGRES, dropped
// after the test, or returns "" (with a log line) when it is unset.
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Log("STRIPELINE_TEST_POSTGRES is not set: PostgreSQL left out")
		return ""
	}
	schema := "stripeline_e2e_" + randHex()
	t.Cleanup(func() {
		ctx := context.Background()
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

// myDatabaseURL makes a fresh database on STRIPELINE_TEST_MYSQL, dropped
// after the test, or returns "" (with a log line) when it is unset.
func myDatabaseURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_MYSQL")
	if base == "" {
		t.Log("STRIPELINE_TEST_MYSQL is not set: MySQL left out")
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
	name := "stripeline_e2e_" + randHex()
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
