package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBackupDiffRestore runs the commands a user runs: sync, backup
// create, changes on the account, diff against it, restore --to-stripe
// with a report, diff again, a second restore that sends nothing,
// backup list/verify, and restore --into a new replica.
func TestCLIBackupDiffRestore(t *testing.T) {
	t.Parallel()
	emu, base := opsEmulator(t)
	env := cliEnv(t, base, opsKey)
	do := func(wantCode int, args ...string) string {
		t.Helper()
		env.Args = args
		code, out, errOut := invoke(t, env)
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out + errOut
	}
	do(0, "sync", "--dest", "sqlite://r.db", "--streams", "customers,products,prices,coupons")
	out := do(0, "backup", "create", "--dest", "sqlite://r.db", "--to", "backups")
	if !strings.Contains(out, "(full) of pipeline default") {
		t.Fatalf("backup create: %s", out)
	}
	var cus []struct {
		ID string `json:"id"`
	}
	for _, raw := range emu.Objects("", "customers")[:2] {
		var c struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &c)
		cus = append(cus, c)
	}
	do(0, "update", "customers", cus[0].ID, "metadata[plan]=changed", "name=New")
	do(0, "delete", "customers", cus[1].ID, "--yes")

	out = do(0, "diff", "backups/latest", "stripe", "--streams", "customers", "--format", "csv")
	for _, want := range []string{
		"customers," + cus[0].ID + ",changed,,metadata.plan,",
		"customers," + cus[0].ID + ",changed,,name,",
		"customers," + cus[1].ID + ",removed,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff csv lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 3 {
		t.Errorf("diff csv: %d lines after the header, want 3:\n%s", n, out)
	}

	do(0, "restore", "backups/latest", "--to-stripe", "--streams", "customers", "--report", "restore.csv")
	rep, err := os.ReadFile(filepath.Join(env.Dir, "restore.csv"))
	if err != nil || !strings.HasPrefix(string(rep), "stream,id,new_id,action,status,fields,not_restored,error\n") ||
		!strings.Contains(string(rep), cus[1].ID+",cus_") || !strings.Contains(string(rep), ",created,") || !strings.Contains(string(rep), ",updated,") {
		t.Fatalf("report: %v\n%s", err, rep)
	}
	out = do(0, "diff", "backups/latest", "stripe", "--streams", "customers", "--updatable", "--format", "json")
	var d struct {
		Streams []struct {
			Added, Changed, Removed int
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Streams) != 1 || d.Streams[0].Added+d.Streams[0].Changed+d.Streams[0].Removed != 0 {
		t.Fatalf("diff after the restore: %v\n%s", err, out)
	}
	if out = do(0, "restore", "backups/latest", "--to-stripe", "--streams", "customers"); !strings.Contains(out, "nothing sent") {
		t.Fatalf("second restore: %s", out)
	}

	out = do(0, "backup", "list", "--to", "backups", "--format", "csv")
	if !strings.HasPrefix(out, "id,pipeline,kind,created,parent,streams,rows,stored,bytes,problem\n") || !strings.Contains(out, ",default,full,") {
		t.Fatalf("backup list: %s", out)
	}
	if out = do(0, "backup", "verify", "backups/latest"); !strings.Contains(out, "every file matches its manifest") {
		t.Fatalf("verify: %s", out)
	}
	do(0, "restore", "backups/latest", "--into", "sqlite://copy.db")
	if out = do(0, "diff", "backups/latest", "sqlite://copy.db", "--summary"); !strings.Contains(out, "no differences in 4 streams") {
		t.Fatalf("diff of the restored copy: %s", out)
	}
	// A second backup is incremental and stores what the sync brought.
	do(0, "sync", "--dest", "sqlite://r.db", "--streams", "customers,products,prices,coupons")
	if out = do(0, "backup", "create", "--dest", "sqlite://r.db", "--to", "file://backups", "--keep", "1", "--format", "json"); !strings.Contains(out, `"parent": "20`) {
		t.Fatalf("second backup: %s", out)
	}
}

// TestCLIBackupUsage: bad flags are usage errors naming the flag.
func TestCLIBackupUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup", "create"}, 2, "--to is required"},
		{[]string{"backup", "create", "--to", "s3://bucket/x"}, 2, "S3 storage is not supported"},
		{[]string{"backup", "create", "--to", "b", "--compression", "lz4"}, 2, `--compression "lz4" is not supported`},
		{[]string{"backup", "prune", "--to", "b"}, 2, "give a retention"},
		{[]string{"restore", "x"}, 2, "say where to restore"},
		{[]string{"restore", "nowhere", "--into", "sqlite://a.db"}, 1, "no such snapshot"},
		{[]string{"diff", "stripe", "live"}, 2, "both sides are the live account"},
		{[]string{"backup", "verify", "missing/latest"}, 1, "no such snapshot"},
	} {
		code, out, errOut := run(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want exit %d and %q", c.args, code, errOut, out, c.code, c.want)
		}
	}
}
