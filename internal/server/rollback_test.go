package server_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// replicaCustomers reads the customers of a pipeline's replica.
func replicaCustomers(t *testing.T, f *fixture, name string) [][]any {
	t.Helper()
	d, err := dest.Open(context.Background(), "sqlite://"+filepath.Join(f.dir, name+".db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, rows, err := d.(dest.Querier).Query(context.Background(), "SELECT * FROM customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// The API's rollback (dry, then real, then again) and the run page's
// buttons: the replica returns to its state after the first run and both
// later runs show rolled_back.
func TestRollbackThroughAPIAndUI(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	body := f.pipelineJSON("acme")
	body["history"] = map[string]any{"mode": "changes", "keep_runs": 10}
	f.api("POST", "/api/v1/pipelines", body, http.StatusCreated)
	first := f.runAndWait("acme")
	if first.Status != pipeline.RunSucceeded {
		t.Fatalf("first run: %+v", first)
	}
	after1 := replicaCustomers(t, f, "acme")
	if err := f.emu.Mutate("", "customers", 2, 3, 1); err != nil {
		t.Fatal(err)
	}
	second := f.runAndWait("acme")
	if err := f.emu.Mutate("", "customers", 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	third := f.runAndWait("acme")
	if cmp.Equal(after1, replicaCustomers(t, f, "acme")) {
		t.Fatal("the changes changed nothing")
	}

	var dry history.Result
	f.api("POST", "/api/v1/runs/"+itoa(second.ID)+"/rollback?dry_run=true", nil, http.StatusOK).JSON(t, &dry)
	if !dry.DryRun || len(dry.Changes) == 0 || len(dry.Undone) != 2 {
		t.Fatalf("dry run: %+v", dry)
	}
	if r := f.do("POST", "/api/v1/runs/"+itoa(second.ID)+"/rollback?dry_run=maybe", f.token, nil); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "dry_run") {
		t.Fatalf("bad dry_run: %d %s", r.Status, r.Body)
	}
	if r := f.do("POST", "/api/v1/runs/999999/rollback", f.token, nil); r.Status != http.StatusNotFound {
		t.Fatalf("unknown run: %d %s", r.Status, r.Body)
	}

	// The run page offers the rollback; its preview changes nothing.
	b := login(t, f)
	page := b.get("/runs/"+itoa(second.ID), http.StatusOK)
	if !strings.Contains(page, `action="/runs/`+itoa(second.ID)+`/rollback"`) {
		t.Fatalf("the run page has no rollback form:\n%s", page)
	}
	r := b.post("/runs/"+itoa(second.ID)+"/rollback", url.Values{"dry_run": {"1"}})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Rollback preview") {
		t.Fatalf("preview: %d %s", r.Status, r.Body)
	}
	if r := f.form("/runs/"+itoa(second.ID)+"/rollback", url.Values{}, b.cookie); r.Status != http.StatusForbidden {
		t.Fatalf("a form without its CSRF token: %d", r.Status)
	}
	r = b.post("/runs/"+itoa(second.ID)+"/rollback", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Rolled back") {
		t.Fatalf("rollback: %d %s", r.Status, r.Body)
	}
	if d := cmp.Diff(after1, replicaCustomers(t, f, "acme")); d != "" {
		t.Fatalf("after the rollback (-first run +now):\n%s", d)
	}
	for _, id := range []int64{second.ID, third.ID} {
		var run pipeline.Run
		f.api("GET", "/api/v1/runs/"+itoa(id), nil, http.StatusOK).JSON(t, &run)
		if run.Status != pipeline.RunRolledBack {
			t.Errorf("run %d: status %s, want rolled_back", id, run.Status)
		}
	}
	var again history.Result
	f.api("POST", "/api/v1/runs/"+itoa(second.ID)+"/rollback", nil, http.StatusOK).JSON(t, &again)
	if !again.Already {
		t.Fatalf("second rollback: %+v", again)
	}
	// The next run re-applies the changes.
	if run := f.runAndWait("acme"); run.Status != pipeline.RunSucceeded || run.Rows == 0 {
		t.Fatalf("run after the rollback: %+v", run)
	}
}
