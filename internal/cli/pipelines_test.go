package cli_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
)

// TestPipelinesCommands drives a pipeline through the CLI: create with a
// stored key (masked everywhere), list, show, bad settings named by their
// flags, run --wait worked in process, its runs and log, pause refusing a
// run, and delete.
func TestPipelinesCommands(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(emulator.Config{Seed: 5, Objects: 200, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	env := testEnv(t, map[string]string{"STRIPE_API_BASE": srv.URL})
	cli := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		e := env
		e.Args = args
		e.Stdin = strings.NewReader(stdin)
		return invoke(t, e)
	}
	const key = "sk_test_pipelinesecret99"
	code, out, errOut := cli(key+"\n", "pipelines", "create", "acme", "--dest", "sqlite://acme.db", "--api-key-stdin",
		"--streams", "customers,products", "--schedule", "every 1h", "--display-name", "Acme Inc", "--max-rps", "500")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "pipelinesecret") || !strings.Contains(out, "stored sk_test_") || !strings.Contains(out, "every 1h") {
		t.Fatalf("create printed:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pipelines", "create", "9lives", "--dest", "sqlite://x.db", "--api-key-env", "K"}, "NAME: \"9lives\" is not a pipeline name"},
		{[]string{"pipelines", "create", "b", "--dest", "sqlite://x.db", "--api-key-env", "K", "--schedule", "every 5s"}, "--schedule: \"every 5s\" is too short"},
		{[]string{"pipelines", "create", "b", "--dest", "sqlite://x.db"}, "--api-key-env or --api-key-stdin:"},
		{[]string{"pipelines", "create", "b", "--dest", "nope://x", "--api-key-env", "K"}, "--dest: \"nope://x\" is not a destination URL"},
		{[]string{"pipelines", "create", "acme", "--dest", "sqlite://x.db", "--api-key-env", "K"}, "NAME: \"acme\" is taken"},
		{[]string{"pipelines", "delete", "acme"}, "--keep-tables or --drop-tables"},
	} {
		code, out, errOut := cli("", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", tc.args, code, tc.want, out, errOut)
		}
	}
	code, out, errOut = cli("", "pipelines", "list")
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "pending") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli("", "pipelines", "run", "acme", "--wait")
	if code != 0 || !strings.Contains(out, "succeeded (manual, attempt 1)") || !strings.Contains(out, "customers") {
		t.Fatalf("run --wait: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "pipelinesecret") {
		t.Fatalf("the key shows in the run's output:\n%s%s", out, errOut)
	}
	code, out, errOut = cli("", "pipelines", "show", "acme", "--format", "json")
	if code != 0 || gjson.Get(out, "status.state").String() != "active" || gjson.Get(out, "connection.key_ref").String() != "stored" || strings.Contains(out, "pipelinesecret") {
		t.Fatalf("show --format json: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli("", "runs", "--pipeline", "acme", "--format", "json")
	if code != 0 || gjson.Get(out, "#").Int() != 1 || gjson.Get(out, "0.status").String() != "succeeded" || gjson.Get(out, "0.rows").Int() == 0 {
		t.Fatalf("runs --pipeline acme: exit %d\n%s%s", code, out, errOut)
	}
	runID := gjson.Get(out, "0.id").String()
	code, out, errOut = cli("", "runs", "logs", runID)
	if code != 0 || !strings.Contains(out, `"run started"`) || !strings.Contains(out, `"run succeeded"`) {
		t.Fatalf("runs logs %s: exit %d\n%s%s", runID, code, out, errOut)
	}
	if code, out, errOut = cli("", "runs", "logs", runID, "--follow"); code != 0 || !strings.Contains(out, `"run succeeded"`) {
		t.Fatalf("runs logs --follow of a finished run: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli("", "pipelines", "pause", "acme"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli("", "pipelines", "run", "acme"); code != 1 || !strings.Contains(errOut, "paused") {
		t.Fatalf("run while paused: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli("", "pipelines", "edit", "acme", "--schedule", "cron 0 6 * * *"); code != 0 || !strings.Contains(out, "cron 0 6 * * *") || !strings.Contains(out, "stored sk_test_") {
		t.Fatalf("edit: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli("", "pipelines", "delete", "acme", "--keep-tables"); code != 0 || !strings.Contains(out, "deleted with 1 runs") {
		t.Fatalf("delete: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli("", "pipelines", "show", "acme"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("show after delete: exit %d\n%s%s", code, out, errOut)
	}
}
