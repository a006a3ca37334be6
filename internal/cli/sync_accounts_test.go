package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// TestSyncAllAccounts syncs the platform and each connected account into
// one replica, each under its own state; an account Stripe refuses is
// skipped without failing the others, and a second run is incremental for
// every account.
func TestSyncAllAccounts(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t, emulator.Config{Seed: 31, Objects: 300, ConnectedAccounts: 3, ConnectedObjects: 80, TestClocks: -1})
	db := filepath.Join(t.TempDir(), "replica.db")
	streams := "customers,products,prices,invoices,invoices_lines"
	code, out, errOut := runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--streams", streams, "--all-accounts", "--parallel-accounts", "2", "--platform-rps", "500")
	if code != 0 {
		t.Fatalf("sync exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Count(out, "succeeded") != 4 || !strings.Contains(out, "platform") {
		t.Fatalf("summary:\n%s", out)
	}
	dst := openReplica(t, db)
	for _, a := range emu.Accounts() {
		if err := replicacheck.Compare(t.Context(), dst.(dest.Querier), emu, a, strings.Split(streams, ",")); err != nil {
			t.Errorf("account %q: %v", a, err)
		}
	}
	// Without --pipeline an account's state is the one `--account acct_…
	// sync` keeps: its id.
	st, err := dst.LoadState(t.Context(), emu.Accounts()[1])
	if err != nil || len(st["customers"]) == 0 {
		t.Fatalf("state of %s: %v %v", emu.Accounts()[1], st, err)
	}
	gone := emu.Accounts()[2]
	emu.Deauthorize(gone)
	code, out, errOut = runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--streams", streams, "--accounts", emu.Accounts()[1]+","+gone+",platform", "--format", "json")
	if code != 0 {
		t.Fatalf("second sync exit %d\n%s\n%s", code, out, errOut)
	}
	var got []struct {
		Account, Status, Error string
		Result                 struct{ Streams []struct{ Mode string } }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 3 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	for _, o := range got {
		switch {
		case o.Account == gone && (o.Status != "skipped" || !strings.Contains(o.Error, "403 account_invalid")):
			t.Errorf("refused account: %+v", o)
		case o.Account != gone && (o.Status != "succeeded" || len(o.Result.Streams) == 0 || o.Result.Streams[0].Mode == "backfill"):
			t.Errorf("account %s: %+v", o.Account, o)
		}
	}
	code, _, errOut = runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--accounts", "-acct_1")
	if code != 2 || !strings.Contains(errOut, "--accounts: -acct_… leaves an account out of all") {
		t.Fatalf("bad --accounts: exit %d %s", code, errOut)
	}
}
