package cli_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/emulator"
)

const destKey = "sk_test_destdestdestdest"

// destEmulator is a small emulated account; the failures below happen
// before any request, but a sync must have somewhere to point.
func destEmulator(t *testing.T) string {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 2, Objects: 100, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return srv.URL
}

// assertDestFailure checks the exit code, that stderr is one sentence
// holding every want, and that the password never shows.
func assertDestFailure(t *testing.T, code int, out, errOut string, wants ...string) {
	t.Helper()
	t.Logf("stderr: %s", strings.TrimSpace(errOut))
	if code != 1 {
		t.Errorf("exit code %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, w := range wants {
		oneSentence(t, errOut, w)
	}
	if strings.Contains(errOut+out, "hunter2") {
		t.Errorf("the password shows:\n%s%s", out, errOut)
	}
	if strings.Contains(errOut, "\n\t") || strings.Contains(errOut, "goroutine") {
		t.Errorf("stderr is not one sentence:\n%s", errOut)
	}
}

// notThere fails the test if path exists.
func notThere(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s was created", path)
	}
}

func TestSyncUnwritableDirectory(t *testing.T) {
	t.Parallel()
	base := destEmulator(t)
	// Running as root, a directory's mode does not stop writes; a path
	// whose parent is a regular file fails for every user (ENOTDIR).
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"csv", "jsonl", "parquet", "sqlite"} {
		t.Run(scheme, func(t *testing.T) {
			target := filepath.Join(blocker, "sub", "out")
			if scheme == "sqlite" {
				target += ".db"
			}
			code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", scheme+"://"+target, "--streams", "customers")
			assertDestFailure(t, code, out, errOut, scheme+"://")
			notThere(t, filepath.Join(blocker, "sub"))
		})
	}
	if os.Geteuid() != 0 {
		t.Run("read-only", func(t *testing.T) {
			ro := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(ro, 0o555); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", "jsonl://"+ro, "--streams", "customers")
			assertDestFailure(t, code, out, errOut, "jsonl://", "not writable")
			if entries, _ := os.ReadDir(ro); len(entries) != 0 {
				t.Errorf("files left in the read-only directory: %v", entries)
			}
		})
	}
}

func TestSyncUnreachableServer(t *testing.T) {
	t.Parallel()
	base := destEmulator(t)
	cases := []struct{ dest, want string }{
		{"postgres://someone:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "postgres://someone:xxxxx@127.0.0.1:1/db"},
		{"mysql://someone:hunter2@127.0.0.1:1/db?timeout=2s", "mysql://someone:xxxxx@127.0.0.1:1/db"},
	}
	for _, c := range cases {
		t.Run(strings.SplitN(c.dest, ":", 2)[0], func(t *testing.T) {
			code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", c.dest, "--streams", "customers")
			assertDestFailure(t, code, out, errOut, c.want, "is running")
		})
	}
}

func TestSyncBadDSN(t *testing.T) {
	t.Parallel()
	base := destEmulator(t)
	dir := t.TempDir()
	cases := []struct{ name, dest, want string }{
		{"no scheme", "stripe.db", "is not a destination URL"},
		{"unknown scheme", "mongodb://someone:hunter2@127.0.0.1/db", `scheme "mongodb" is not supported`},
		{"postgres bad option", "postgres://someone:hunter2@127.0.0.1:5432/db?sslmode=sometimes", "postgres://someone:xxxxx@127.0.0.1:5432/db"},
		{"mysql no database", "mysql://someone:hunter2@127.0.0.1:3306", "mysql://someone:xxxxx@127.0.0.1:3306"},
		{"files no directory", "csv://", "no directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", c.dest, "--streams", "customers")
			assertDestFailure(t, code, out, errOut, c.want)
		})
	}
	// A bad flag is reported before the destination is touched.
	target := filepath.Join(dir, "never")
	code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", "csv://"+target, "--start-date", "yesterday")
	if code != 2 || !strings.Contains(errOut, "--start-date") {
		t.Errorf("bad --start-date: exit %d\n%s%s", code, out, errOut)
	}
	notThere(t, target)
}

// TestSyncMissingPostgresDatabase points at a running server whose
// database does not exist: one sentence, and no schema is created anywhere.
func TestSyncMissingPostgresDatabase(t *testing.T) {
	t.Parallel()
	raw := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if raw == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set; skipping")
	}
	base := destEmulator(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	missing := *u
	missing.Path = "/stripeline_no_such_db"
	if missing.User != nil {
		missing.User = url.UserPassword(missing.User.Username(), "hunter2")
	}
	q := missing.Query()
	q.Set("schema", "stripeline_must_not_exist")
	missing.RawQuery = q.Encode()
	code, out, errOut := runCLI(t, base, destKey, "sync", "--dest", missing.String(), "--streams", "customers")
	assertDestFailure(t, code, out, errOut, "xxxxx@", "stripeline_no_such_db")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Skipf("cannot check for leftovers: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'stripeline_must_not_exist'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a schema was created for the failed sync")
	}
}

// TestReadMissingReplica: query and export of a replica that is not there
// say so and create nothing (no empty SQLite file, no directory).
func TestReadMissingReplica(t *testing.T) {
	t.Parallel()
	base := destEmulator(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	code, out, errOut := runCLI(t, base, destKey, "query", "SELECT 1", "--dest", "sqlite://"+db)
	assertDestFailure(t, code, out, errOut, "no replica at --dest sqlite://"+db)
	notThere(t, db)

	exp := filepath.Join(dir, "export")
	code, out, errOut = runCLI(t, base, destKey, "export", "customers", "--dest", "jsonl://"+exp, "--format", "csv")
	assertDestFailure(t, code, out, errOut, "no replica at --dest jsonl://"+exp)
	notThere(t, exp)

	code, out, errOut = runCLI(t, base, destKey, "query", "SELECT 1", "--dest", "csv://"+exp)
	if code != 2 || !strings.Contains(errOut, "cannot run SQL") {
		t.Errorf("query on csv: exit %d\n%s%s", code, out, errOut)
	}
	notThere(t, exp)
}
