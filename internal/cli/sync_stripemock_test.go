package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver" // database/sql driver "sqlite3"

	"github.com/stripeline/stripeline/internal/catalog"
)

// startStripeMock starts Stripe's official mock (go tool stripe-mock) on
// two free loopback ports and returns its HTTP base URL, skipping the test
// when it cannot be started.
func startStripeMock(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("stripe-mock test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	// `go tool -n` builds the tool (cached) and prints its binary, which we
	// then run ourselves so killing it leaves no child behind.
	bin, err := exec.CommandContext(ctx, "go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		t.Skipf("stripe-mock unavailable (go tool -n stripe-mock: %v)", err)
	}
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.CommandContext(ctx, strings.TrimSpace(string(bin)), "-http-addr", httpAddr, "-https-addr", httpsAddr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", httpAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return "http://" + httpAddr
		}
		if time.Now().After(deadline) {
			t.Skipf("stripe-mock did not listen on %s within 30s: %s", httpAddr, logs.String())
		}
		// Poll the port; the mock loads its 8 MB spec before listening.
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Skip("stripe-mock start timed out")
		}
	}
}

// TestSyncAgainstStripeMock syncs every stream stripe-mock answers into
// SQLite: the run succeeds, is recorded as such, and fills many tables.
func TestSyncAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := startStripeMock(t)
	db := filepath.Join(t.TempDir(), "mock.db")
	code, out, errOut := runCLI(t, base, "sk_test_123", "sync", "--dest", "sqlite://"+db, "--max-rps", "1000", "--endpoint-rps", "1000", "--format", "json")
	if code != 0 {
		t.Fatalf("sync against stripe-mock: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Status  string
		Streams []struct{ Stream, Error, Skipped string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if res.Status != "succeeded" {
		t.Errorf("status %q, want succeeded", res.Status)
	}
	synced := map[string]bool{}
	for _, s := range res.Streams {
		synced[s.Stream] = true
		// Streams whose list needs a parameter no stream supplies are
		// skipped on any account; every other stream must sync.
		if s.Error != "" || (s.Skipped != "" && !strings.Contains(s.Skipped, "needs query parameters")) {
			t.Errorf("%s: error %q, skipped %q", s.Stream, s.Error, s.Skipped)
		}
	}
	// The default selection is every stream but those another lists more
	// completely (customers_subscriptions: subscriptions?status=all).
	for _, s := range catalog.All() {
		if dup := catalog.DuplicateOf(s.Name); dup != "" {
			if synced[s.Name] {
				t.Errorf("stream %s synced by default besides %s", s.Name, dup)
			}
			continue
		}
		if !synced[s.Name] {
			t.Errorf("stream %s not in the run", s.Name)
		}
	}
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var status string
	var runs int
	if err := conn.QueryRow(`SELECT count(*), max(status) FROM _stripeline_runs`).Scan(&runs, &status); err != nil {
		t.Fatalf("read _stripeline_runs: %v", err)
	}
	if runs != 1 || status != "succeeded" {
		t.Errorf("_stripeline_runs: %d runs, status %q; want one succeeded run", runs, status)
	}
	rows, err := conn.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\_stripeline%' ESCAPE '\'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	filled := 0
	for _, tbl := range tables {
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM "` + tbl + `"`).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		if n > 0 {
			filled++
		}
	}
	t.Logf("stripe-mock: %d of %d tables have rows", filled, len(tables))
	if filled < 10 {
		t.Errorf("only %d of %d tables have rows", filled, len(tables))
	}
	for _, tbl := range []string{"customers", "charges", "invoices", "products"} {
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM "` + tbl + `"`).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s: %d rows (%v)", tbl, n, err)
		}
	}
}
