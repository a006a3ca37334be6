package cli_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/emulator"
)

// TestWebhooksCommands: setup registers an endpoint and never prints its
// secret; status lists it; add-secret and remove-secret rotate; bad input
// is refused naming the flag (exit 2), a file destination with the reason,
// and listen refuses a pipeline without webhooks.
func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(emulator.Config{Seed: 5, Objects: 100, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	env := testEnv(t, map[string]string{"STRIPE_API_BASE": srv.URL, "STRIPE_API_KEY_HOOKS": "sk_test_hooks"})
	cli := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		e := env
		e.Args = args
		e.Stdin = strings.NewReader(stdin)
		return invoke(t, e)
	}
	for _, p := range [][]string{
		{"pipelines", "create", "live", "--dest", "sqlite://live.db", "--api-key-env", "STRIPE_API_KEY_HOOKS", "--streams", "customers"},
		{"pipelines", "create", "files", "--dest", "jsonl://out", "--api-key-env", "STRIPE_API_KEY_HOOKS", "--streams", "customers"},
	} {
		if code, out, errOut := cli("", p...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", p, code, out, errOut)
		}
	}
	code, out, errOut := cli("", "webhooks", "setup", "--pipeline", "live", "--url", "http://127.0.0.1:9/webhooks/live")
	if code != 0 || !strings.Contains(out, "endpoint we_") || !strings.Contains(out, "whsec_…") {
		t.Fatalf("setup: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli("whsec_rolledInTheDashboard1234\n", "webhooks", "add-secret", "--pipeline", "live")
	if code != 0 || !strings.Contains(out, "whsec_…1234") || strings.Contains(out+errOut, "rolledInTheDashboard") {
		t.Fatalf("add-secret: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli("", "webhooks", "status", "--pipeline", "live")
	if code != 0 || strings.Count(out, "endpoint ") != 2 || !strings.Contains(out, "[enabled]") || !strings.Contains(out, "none applied yet") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "rolledInTheDashboard") {
		t.Fatalf("status shows a secret:\n%s", out)
	}
	if code, out, errOut = cli("", "webhooks", "remove-secret", "--pipeline", "live", "--last4", "1234"); code != 0 || !strings.Contains(out, "1 secret(s) dropped") {
		t.Fatalf("remove-secret: exit %d\n%s%s", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"webhooks", "setup", "--url", "https://x.example/webhooks/live"}, 2, "--pipeline: name the pipeline"},
		{[]string{"webhooks", "setup", "--pipeline", "live"}, 2, "--url: give the address"},
		{[]string{"webhooks", "setup", "--pipeline", "live", "--url", "http://hooks.example.com/webhooks/live"}, 2, "--url: \"http://hooks.example.com/webhooks/live\" must use https"},
		{[]string{"webhooks", "setup", "--pipeline", "files", "--url", "https://hooks.example.com/webhooks/files"}, 2, "cannot take webhooks"},
		{[]string{"webhooks", "setup", "--pipeline", "nosuch", "--url", "https://hooks.example.com/webhooks/nosuch"}, 1, "not found"},
		{[]string{"webhooks", "remove-secret", "--pipeline", "live"}, 2, "--last4"},
		{[]string{"listen", "--pipeline", "files", "--addr", "127.0.0.1:0"}, 2, "webhooks are not set up"},
		{[]string{"listen", "--pipeline", "live", "--addr", "0.0.0.0:8090"}, 2, "listens beyond this machine"},
	} {
		code, out, errOut := cli("", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}
