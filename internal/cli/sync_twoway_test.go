package cli_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/stripe"
)

func TestSyncTwoWayCLI(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t, emulator.Config{Seed: 5, Objects: 80, ConnectedAccounts: -1, TestClocks: -1})
	path := filepath.Join(t.TempDir(), "replica.db")
	args := []string{"sync", "--dest", "sqlite://" + path, "--streams", "customers,products,prices",
		"--two-way", "customers=email,name,metadata", "--conflicts", "database-wins"}
	if code, out, errOut := runCLI(t, srv.URL, syncKey, args...); code != 0 {
		t.Fatalf("first sync exit %d\n%s\n%s", code, out, errOut)
	}
	id := gjson.GetBytes(emu.Objects(emu.MainAccountID(), "customers")[0], "id").Str
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE customers SET name = ?, email = ? WHERE id = ?", "From SQL", "sql@example.com", id); err != nil {
		t.Fatal(err)
	}
	c, err := stripe.New(stripe.Config{Key: syncKey, APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), &stripe.Request{Method: "POST", Path: "/v1/customers/" + id, Body: url.Values{"name": {"From Stripe"}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, srv.URL, syncKey, args...)
	if code != 0 {
		t.Fatalf("two-way sync exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "two-way (database-wins): 1 updated") || !strings.Contains(out, "conflict: customers "+id+" name") {
		t.Fatalf("sync output lacks the push:\n%s", out)
	}
	got := ""
	for _, raw := range emu.Objects(emu.MainAccountID(), "customers") {
		if gjson.GetBytes(raw, "id").Str == id {
			got = gjson.GetBytes(raw, "name").Str + " " + gjson.GetBytes(raw, "email").Str
		}
	}
	if got != "From SQL sql@example.com" {
		t.Fatalf("emulator's customer %q", got)
	}
	run := regexp.MustCompile(`run (\d{8}T\d{6}Z-[0-9a-f]+) succeeded`).FindStringSubmatch(out)
	if run == nil {
		t.Fatalf("no run id in:\n%s", out)
	}
	code, out, errOut = runCLI(t, srv.URL, syncKey, "runs", "show", run[1], "--dest", "sqlite://"+path)
	if code != 0 || !strings.Contains(out, `conflict: customers `+id+` name: database "From SQL", Stripe "From Stripe"`) || !strings.Contains(out, "database wins") {
		t.Fatalf("runs show exit %d:\n%s\n%s", code, out, errOut)
	}
	// A row Stripe refuses: reported with its parameter, exit 1.
	other := gjson.GetBytes(emu.Objects(emu.MainAccountID(), "customers")[1], "id").Str
	if _, err := db.Exec("UPDATE customers SET email = ? WHERE id = ?", "nope", other); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, srv.URL, syncKey, args...)
	if code != 1 || !strings.Contains(out, "refused: update customers "+other+" (email): Invalid email address: nope") || !strings.Contains(errOut, "Stripe refused 1 of the database's changes") {
		t.Fatalf("refused row: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSyncTwoWayCLIRefusesFieldsTheUpdateLacks(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t, emulator.Config{Seed: 5, Objects: 20, ConnectedAccounts: -1})
	path := filepath.Join(t.TempDir(), "replica.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--two-way", "customers=email,livemode"}, "--two-way: customers.livemode cannot be two-way"},
		{[]string{"--two-way", "customers"}, "use STREAM=field,field"},
		{[]string{"--two-way", "customers=email", "--conflicts", "loudest-wins"}, `--conflicts: "loudest-wins" is not a policy`},
		{[]string{"--two-way", "invoices_lines=amount"}, "--two-way:"},
		{[]string{"--two-way", "customers=email", "--dest", "jsonl://" + filepath.Join(t.TempDir(), "files")}, "--two-way: needs a SQL destination"},
	} {
		code, out, errOut := runCLI(t, srv.URL, syncKey, append([]string{"sync", "--dest", "sqlite://" + path}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q), want 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
}
