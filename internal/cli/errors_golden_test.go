package cli_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/cli"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/stripe"
)

var requestID = regexp.MustCompile(`req_[0-9]+`)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// errorCase is one invocation that fails with a sentence a user reads.
type errorCase struct {
	name   string
	args   []string
	key    string            // STRIPE_API_KEY (default: a valid test key)
	config string            // stripeline.yaml in the working directory
	vars   map[string]string // more environment
	// setup prepares the working directory (a held lock, say) and may
	// adjust the invocation.
	setup func(t *testing.T, env *cli.Env)
}

// TestErrorSentences runs every failure a user may meet and compares its
// exit code and the sentence stderr ends with to
// testdata/errors/NAME.golden (go test ./internal/cli -update rewrites
// them). Temporary directories read $DIR, the emulator's URL $BASE.
func TestErrorSentences(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t, emulator.Config{Seed: 2, Objects: 100, ConnectedAccounts: -1})
	closed := "http://" + freeAddr(t)
	cases := []errorCase{
		// Flags.
		{name: "flag-unknown", args: []string{"sync", "--sreams", "customers"}},
		{name: "flag-not-a-number", args: []string{"sync", "--lookback-days", "seven"}},
		{name: "flag-lookback-negative", args: []string{"sync", "--lookback-days", "-1"}},
		{name: "flag-window-negative", args: []string{"sync", "--window-days", "-2"}},
		{name: "flag-reconcile-too-often", args: []string{"sync", "--reconcile-every", "5m"}},
		{name: "flag-concurrency-negative", args: []string{"sync", "--concurrency", "-3"}},
		{name: "flag-start-date", args: []string{"sync", "--start-date", "yesterday"}},
		{name: "flag-max-rps-negative", args: []string{"sync", "--max-rps", "-1"}},
		{name: "flag-wait", args: []string{"sync", "--wait=soon"}},
		{name: "flag-format", args: []string{"streams", "--format", "xml"}},
		{name: "flag-log-level", args: []string{"--log-level", "loud", "streams"}},
		{name: "flag-account", args: []string{"--account", "cus_123", "streams"}},
		{name: "flag-export-format", args: []string{"export", "customers", "--format", "xml"}},
		{name: "flag-load-mode", args: []string{"load", "customers", "people.csv"}},
		{name: "flag-emulator-public-addr", args: []string{"emulator", "--addr", "0.0.0.0:12111"}},
		// Streams.
		{name: "stream-unknown", args: []string{"sync", "--streams", "custmers"}},
		{name: "stream-unknown-in-config", args: []string{"sync"}, config: "streams:\n  custmers: {}\n"},
		{name: "stream-unknown-get", args: []string{"get", "custmers", "cus_1"}},
		// Destinations.
		{name: "dest-not-a-url", args: []string{"sync", "--dest", "stripe.db", "--streams", "customers"}},
		{name: "dest-not-a-url-in-config", args: []string{"sync", "--streams", "customers"}, config: "dest: stripe.db\n"},
		{name: "dest-unknown-scheme", args: []string{"sync", "--dest", "mongodb://someone:hunter2@127.0.0.1/db", "--streams", "customers"}},
		{name: "dest-files-no-directory", args: []string{"sync", "--dest", "csv://", "--streams", "customers"}},
		{name: "dest-missing-replica", args: []string{"query", "SELECT 1", "--dest", "sqlite://typo.db"}},
		{name: "dest-query-files", args: []string{"query", "SELECT 1", "--dest", "csv://out"}},
		// Keys.
		{name: "key-missing", args: []string{"check"}, key: "-"},
		{name: "key-malformed", args: []string{"check"}, key: "pk_test_notasecretkey"},
		{name: "key-rejected", args: []string{"check"}, key: "sk_test_not-a-valid-key-abcd"},
		{name: "key-in-config-malformed", args: []string{"check"}, key: "-", config: "api_key: pk_test_notasecretkey\n"},
		// The API base.
		{name: "base-not-a-url", args: []string{"--api-base", "ftp://127.0.0.1", "check"}},
		{name: "base-unreachable", args: []string{"check"}, vars: map[string]string{"STRIPE_API_BASE": closed}, setup: func(t *testing.T, env *cli.Env) {
			cli.SetTestClientOption(env, func(c *stripe.Config) { c.MaxBackoff = time.Millisecond })
		}},
		{name: "base-unreachable-flag", args: []string{"--api-base", closed, "check"}, setup: func(t *testing.T, env *cli.Env) {
			cli.SetTestClientOption(env, func(c *stripe.Config) { c.MaxBackoff = time.Millisecond })
		}},
		{name: "base-in-config-not-a-url", args: []string{"check"}, vars: map[string]string{"STRIPE_API_BASE": "-"}, config: "api_base: 127.0.0.1:12111\n"},
		// The config file.
		{name: "config-unknown-key", args: []string{"streams"}, config: "max_rsp: 5\n"},
		{name: "config-field", args: []string{"streams"}, config: "max_rps: -5\n"},
		{name: "config-missing", args: []string{"--config", "nothere.yaml", "streams"}},
		{name: "config-not-yaml", args: []string{"streams"}, config: "dest: [sqlite://x.db\n"},
		// A pipeline another run holds.
		{name: "pipeline-locked", args: []string{"sync", "--dest", "sqlite://replica.db", "--streams", "customers"}, setup: holdLock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"STRIPE_API_BASE": srv.URL, "STRIPE_API_KEY": "sk_test_goldengoldengolden"}
			if c.key != "" {
				vars["STRIPE_API_KEY"] = c.key
			}
			for k, v := range c.vars {
				vars[k] = v
			}
			for k, v := range vars {
				if v == "-" {
					delete(vars, k)
				}
			}
			env := testEnv(t, vars, c.args...)
			if c.config != "" {
				if err := os.WriteFile(filepath.Join(env.Dir, "stripeline.yaml"), []byte(c.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.setup != nil {
				c.setup(t, &env)
			}
			code, out, errOut := invoke(t, env)
			if code == 0 {
				t.Fatalf("exit 0\n%s%s", out, errOut)
			}
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			got := lines[len(lines)-1]
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "time=") {
					t.Errorf("stderr has more than the sentence and log lines:\n%s", errOut)
				}
			}
			got = strings.NewReplacer(env.Dir, "$DIR", srv.URL, "$BASE", closed, "$BASE").Replace(got)
			got = requestID.ReplaceAllString(got, "req_N") // the shared emulator counts every subtest's requests
			got = "exit " + string(rune('0'+code)) + "\n" + got + "\n"
			if strings.Contains(got, "hunter2") || strings.Contains(got, "goldengolden") {
				t.Errorf("a secret shows: %s", got)
			}
			golden(t, filepath.Join("testdata", "errors", c.name+".golden"), got)
		})
	}
}

// holdLock takes the run lock of pipeline default on replica.db in the
// working directory, as another run would hold it.
func holdLock(t *testing.T, env *cli.Env) {
	t.Helper()
	dst := openReplica(t, filepath.Join(env.Dir, "replica.db"))
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := dst.(dest.Locker).Lock(context.Background(), dest.LockRequest{Pipeline: "default",
		Holder: dest.Holder{Pipeline: "default", Host: "build-7", PID: 4242, RunID: "20261201T100000Z-beef", Since: since}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Unlock() })
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s(go test ./internal/cli -update rewrites it)", path, got, want)
	}
}
