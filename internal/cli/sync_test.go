package cli_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/enginetest"
)

const syncKey = "sk_test_syncsyncsyncsync"

func newEmulator(t *testing.T, cfg emulator.Config) (*emulator.Emulator, *httptest.Server) {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv
}

func openReplica(t *testing.T, path string) dest.Destination {
	t.Helper()
	dst, err := dest.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return dst
}

func TestSyncCLIFullIncrementalAndRuns(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t, emulator.Config{Seed: 21, Objects: 1500})
	db := filepath.Join(t.TempDir(), "replica.db")
	code, out, errOut := runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db)
	if code != 0 {
		t.Fatalf("sync exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "succeeded") || !strings.Contains(out, "customers") {
		t.Fatalf("summary table missing:\n%s", out)
	}
	if !strings.Contains(errOut, "sync customers: done") {
		t.Fatalf("no progress lines on stderr:\n%s", errOut)
	}
	if err := emu.Mutate("", "customers", 3, 3, 1); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--format", "json")
	if code != 0 {
		t.Fatalf("incremental exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Status string `json:"status"`
		Events int    `json:"events_applied"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json result: %v\n%s", err, out)
	}
	if res.Status != "succeeded" || res.Events < 7 {
		t.Fatalf("incremental result %+v", res)
	}
	dst := openReplica(t, db)
	enginetest.AssertReplicaEqualsAccount(t, dst.(dest.Querier), emu, "", enginetest.SeededStreams(t, emu, ""))

	code, out, _ = runCLI(t, srv.URL, syncKey, "runs", "--dest", "sqlite://"+db)
	if code != 0 || strings.Count(out, "succeeded") != 2 {
		t.Fatalf("runs exit %d:\n%s", code, out)
	}
}

func TestSyncCLIBadFlagsWriteNothing(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t, emulator.Config{Seed: 1, Objects: 200})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--start-date", "yesterday"}, "--start-date"},
		{[]string{"--streams", "custommers"}, "custommers"},
		{[]string{"--lookback-days", "-3"}, "--lookback-days"},
		{[]string{"--max-rps", "-1"}, "--max-rps"},
		{[]string{"--dest", "oracle://x"}, "oracle"},
	} {
		db := filepath.Join(t.TempDir(), "replica.db")
		args := append([]string{"sync", "--dest", "sqlite://" + db}, tc.args...)
		code, _, errOut := runCLI(t, srv.URL, syncKey, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want a one-line error naming %q", tc.args, code, errOut, tc.want)
		}
		if tc.want != "oracle" && code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if _, err := os.Stat(db); err == nil {
			t.Errorf("%v: the replica was created despite the bad flag", tc.args)
		}
	}
}

func TestSyncCLIUnreadableStream(t *testing.T) {
	t.Parallel()
	const limited = "rk_test_nochargesnocharges"
	perms := []string{}
	for _, o := range []string{"customer", "product", "price", "coupon", "event"} {
		perms = append(perms, "rak_"+o+"_read")
	}
	_, srv := newEmulator(t, emulator.Config{Seed: 4, Objects: 600, Restricted: map[string][]string{limited: perms}})
	db := filepath.Join(t.TempDir(), "replica.db")
	streams := "customers,products,prices,coupons,charges"
	code, out, errOut := runCLI(t, srv.URL, limited, "sync", "--dest", "sqlite://"+db, "--streams", streams)
	if code != 1 || !strings.Contains(errOut, "charges") || !strings.Contains(errOut, "rak_charge_read") {
		t.Fatalf("exit %d, want 1 naming charges and rak_charge_read\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	dst := openReplica(t, db)
	_, rows, err := dst.(dest.Querier).Query(context.Background(), "SELECT count(*) FROM customers")
	if err != nil || len(rows) != 1 || rows[0][0].(int64) == 0 {
		t.Fatalf("readable streams were not synced: %v %v", rows, err)
	}
	runs, _ := dst.Runs(context.Background(), "", 5)
	if len(runs) != 1 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "charges") {
		t.Fatalf("run record: %+v", runs)
	}
	dst.Close()

	code, out, errOut = runCLI(t, srv.URL, limited, "sync", "--dest", "sqlite://"+db, "--streams", streams, "--skip-unreadable")
	if code != 0 || !strings.Contains(out, "rak_charge_read") {
		t.Fatalf("--skip-unreadable: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSyncCLIConnectedAccount(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t, emulator.Config{Seed: 9, Objects: 800, ConnectedAccounts: 1})
	acct := emu.Accounts()[1]
	db := filepath.Join(t.TempDir(), "replica.db")
	code, out, errOut := runCLI(t, srv.URL, syncKey, "--account", acct, "sync", "--dest", "sqlite://"+db, "--streams", "customers,charges,invoices,invoices_lines")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	dst := openReplica(t, db)
	enginetest.AssertReplicaEqualsAccount(t, dst.(dest.Querier), emu, acct, []string{"customers", "charges", "invoices", "invoices_lines"})
	code, _, errOut = runCLI(t, srv.URL, syncKey, "--account", "acct_doesnotexist", "sync", "--dest", "sqlite://"+filepath.Join(t.TempDir(), "x.db"), "--streams", "customers")
	if code != 1 {
		t.Fatalf("unknown account: exit %d: %s", code, errOut)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	code, out, errOut := runCLI(t, "", "", "demo", "--objects", "2000", "--db", db)
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Net revenue by month") || !strings.Contains(out, "NET_REVENUE") {
		t.Fatalf("no sample answer:\n%s", out)
	}
	dst := openReplica(t, db)
	_, rows, err := dst.(dest.Querier).Query(context.Background(), "SELECT count(*) FROM charges WHERE status = 'succeeded'")
	if err != nil || rows[0][0].(int64) == 0 {
		t.Fatalf("demo replica has no charges: %v %v", rows, err)
	}
}
