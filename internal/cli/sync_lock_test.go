package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
)

// TestSyncCLIRefusedWhileLocked: while another run holds the pipeline, sync
// exits 1 with one sentence naming it, at once or after --wait runs out,
// and writes no run; a bad --wait is a usage error.
func TestSyncCLIRefusedWhileLocked(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t, emulator.Config{Seed: 2, Objects: 200})
	db := filepath.Join(t.TempDir(), "replica.db")
	dst := openReplica(t, db)
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := dst.(dest.Locker).Lock(context.Background(), dest.LockRequest{Pipeline: "default",
		Holder: dest.Holder{Pipeline: "default", Host: "build-7", PID: 4242, RunID: "20261201T100000Z-beef", Since: since}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()

	code, _, errOut := runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--streams", "customers")
	want := "stripeline: pipeline default is being synced by run 20261201T100000Z-beef (pid 4242 on host build-7, since 2026-12-01T10:00:00Z); wait for it to finish or pass --wait\n"
	if code != 1 || !strings.HasSuffix(errOut, want) {
		t.Errorf("sync while locked: exit %d, stderr\n%s\nwant it to end with\n%s", code, errOut, want)
	}
	code, _, errOut = runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--streams", "customers", "--wait", "50ms")
	if code != 1 || !strings.Contains(errOut, "20261201T100000Z-beef") || !strings.Contains(errOut, "gave up after waiting") {
		t.Errorf("sync --wait 50ms while locked: exit %d, stderr\n%s", code, errOut)
	}
	if runs, err := dst.Runs(context.Background(), "", 10); err != nil || len(runs) != 0 {
		t.Errorf("refused runs were recorded: %+v (%v)", runs, err)
	}
	for _, bad := range [][]string{{"--wait", "5"}, {"--wait=soon"}, {"--wait=-1m"}} {
		code, _, errOut = runCLI(t, srv.URL, syncKey, append([]string{"sync", "--dest", "sqlite://" + db}, bad...)...)
		if code != 2 || !strings.Contains(errOut, "--wait") {
			t.Errorf("sync %v: exit %d, stderr %s", bad, code, errOut)
		}
	}
	// Another pipeline runs beside the held one.
	code, out, errOut := runCLI(t, srv.URL, syncKey, "sync", "--dest", "sqlite://"+db, "--streams", "customers", "--pipeline", "other")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Errorf("sync --pipeline other: exit %d\n%s\n%s", code, out, errOut)
	}
}
