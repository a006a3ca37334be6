package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/tidwall/gjson"
)

// testEnv is one invocation of stripeline args inside the test: a fresh
// working directory of its own (so no stripeline.yaml unless the test
// writes one there) and vars as its whole environment.
func testEnv(t *testing.T, vars map[string]string, args ...string) cli.Env {
	t.Helper()
	return cli.Env{
		Args:   args,
		Stdin:  strings.NewReader(""),
		Getenv: func(k string) string { return vars[k] },
		Dir:    t.TempDir(),
	}
}

// invoke runs env and returns the exit code, stdout and stderr (unless the
// test set its own writers).
func invoke(t *testing.T, env cli.Env) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if env.Stdout == nil {
		env.Stdout = &stdout
	}
	if env.Stderr == nil {
		env.Stderr = &stderr
	}
	code := cli.Run(context.Background(), env)
	return code, stdout.String(), stderr.String()
}

// runCLI runs stripeline with args against base with key, in a working
// directory whose stripeline.yaml paces requests fast (so probing a
// hundred streams takes milliseconds).
func runCLI(t *testing.T, base, key string, args ...string) (int, string, string) {
	t.Helper()
	return invoke(t, cliEnv(t, base, key, args...))
}

// cliEnv is runCLI's invocation, for a test to adjust before invoking it.
func cliEnv(t *testing.T, base, key string, args ...string) cli.Env {
	t.Helper()
	env := testEnv(t, map[string]string{"STRIPE_API_BASE": base, "STRIPE_API_KEY": key}, args...)
	if err := os.WriteFile(filepath.Join(env.Dir, "stripeline.yaml"), []byte("max_rps: 1000\nendpoint_rps: 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// run runs a command that needs neither a key nor a server.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return invoke(t, testEnv(t, nil, args...))
}

// TestEnvDirHoldsRelativePaths: the config file, a relative sqlite:// and
// file replica and --out are taken from Env.Dir, not the process's working
// directory.
func TestEnvDirHoldsRelativePaths(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	replica(t, "sqlite://"+filepath.Join(env.Dir, "rel.db"))
	if err := os.WriteFile(filepath.Join(env.Dir, "stripeline.yaml"), []byte("dest: sqlite://rel.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env.Args = []string{"query", "SELECT count(*) AS n FROM customers", "--format", "csv"}
	if code, out, errOut := invoke(t, env); code != 0 || out != "n\n2\n" {
		t.Fatalf("query of the config's relative dest: exit %d\n%s%s", code, out, errOut)
	}
	env.Args = []string{"export", "customers", "--dest", "sqlite://rel.db", "--format", "jsonl", "--out", "customers.jsonl"}
	if code, out, errOut := invoke(t, env); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(env.Dir, "customers.jsonl")); err != nil || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("export --out customers.jsonl in Env.Dir: %q, %v", b, err)
	}
	env.Args = []string{"query", "SELECT 1", "--dest", "sqlite://elsewhere.db"}
	code, _, errOut := invoke(t, env)
	if code != 1 || !strings.Contains(errOut, "no replica at --dest sqlite://elsewhere.db: elsewhere.db does not exist") {
		t.Fatalf("missing relative replica: exit %d: %s", code, errOut)
	}
}

// TestEnvGetenvExpandsConfig: ${VAR} in the config file and the STRIPE_*
// variables come from Env.Getenv.
func TestEnvGetenvExpandsConfig(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"REPLICA": "from-env.db", "STRIPELINE_CONFIG": "conf/other.yaml"}, "query", "SELECT 1")
	if err := os.Mkdir(filepath.Join(env.Dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.Dir, "conf", "other.yaml"), []byte("dest: sqlite://${REPLICA}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := invoke(t, env)
	if code != 1 || !strings.Contains(errOut, "no replica at --dest sqlite://from-env.db") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestEnvIsTerminal: what Env.IsTerminal says is a terminal decides the
// delete confirmation and refuses parquet on a terminal's stdout.
func TestEnvIsTerminal(t *testing.T) {
	t.Parallel()
	_, base := opsEmulator(t)
	code, out, errOut := runCLI(t, base, opsKey, "create", "customers", "email=tty@example.com", "--format", "json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := gjson.Get(out, "id").Str
	env := cliEnv(t, base, opsKey, "delete", "customers", id)
	env.IsTerminal = func(s any) bool { return s == env.Stdin }
	env.Stdin = strings.NewReader("n\n")
	code, _, errOut = invoke(t, env)
	if code != 0 || !strings.Contains(errOut, "Delete customers "+id+"? ") || !strings.Contains(errOut, "not deleted") {
		t.Fatalf("delete answered n on a terminal: exit %d: %s", code, errOut)
	}
	env.Stdin = strings.NewReader("y\n")
	env.Args = append(env.Args, "--format", "json")
	if code, out, errOut = invoke(t, env); code != 0 || !gjson.Get(out, "deleted").Bool() {
		t.Fatalf("delete answered y on a terminal: exit %d\n%s%s", code, out, errOut)
	}

	var stdout bytes.Buffer
	env = testEnv(t, nil, "export", "customers", "--format", "parquet")
	env.Stdout = &stdout
	env.IsTerminal = func(s any) bool { return s == &stdout }
	if code, _, errOut = invoke(t, env); code != 2 || !strings.Contains(errOut, "parquet is binary") {
		t.Fatalf("parquet to a terminal: exit %d: %s", code, errOut)
	}
}

// TestEnvMemoryLimit: a sync sets the soft memory limit through
// Env.SetMemoryLimit unless GOMEMLIMIT is set.
func TestEnvMemoryLimit(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t, emulator.Config{Seed: 4, Objects: 100, ConnectedAccounts: -1})
	for _, gomemlimit := range []string{"", "1GiB"} {
		env := cliEnv(t, srv.URL, syncKey, "sync", "--streams", "customers", "--dest", "sqlite://r.db")
		getenv := env.Getenv
		env.Getenv = func(k string) string {
			if k == "GOMEMLIMIT" {
				return gomemlimit
			}
			return getenv(k)
		}
		var limits []int64
		env.SetMemoryLimit = func(n int64) int64 { limits = append(limits, n); return 0 }
		if code, out, errOut := invoke(t, env); code != 0 {
			t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
		}
		want := []int64{150 << 20}
		if gomemlimit != "" {
			want = nil
		}
		if !slices.Equal(limits, want) {
			t.Errorf("GOMEMLIMIT=%q: limits set %v, want %v", gomemlimit, limits, want)
		}
	}
}
