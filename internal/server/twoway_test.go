package server_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver" // database/sql driver "sqlite3"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func TestTwoWayPipelineThroughTheAPIAndTheRunPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	body := f.pipelineJSON("acme")
	body["two_way"] = map[string]any{"streams": map[string]any{"customers": []string{"email", "name"}}}
	var p map[string]any
	f.api("POST", "/api/v1/pipelines", body, http.StatusCreated).JSON(t, &p)
	if gjson.Get(mustMarshal(t, p), "two_way.streams.customers.1").Str != "name" {
		t.Fatalf("the created pipeline lacks its two_way: %v", p)
	}
	if r := f.runAndWait("acme"); r.Status != pipeline.RunSucceeded {
		t.Fatalf("first run %s: %s", r.Status, r.Error)
	}
	id := gjson.GetBytes(f.emu.Objects("", "customers")[0], "id").Str
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(f.dir, "acme.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE customers SET email = ? WHERE id = ?", "no-at-sign", id); err != nil {
		t.Fatal(err)
	}
	r := f.runAndWait("acme")
	if r.Status != pipeline.RunFailed || r.TwoWay == nil || len(r.TwoWay.Rejected) != 1 {
		t.Fatalf("second run %s %+v, want failed with one refused row", r.Status, r.TwoWay)
	}
	var got map[string]any
	f.api("GET", "/api/v1/runs/"+itoa(r.ID), nil, http.StatusOK).JSON(t, &got)
	if gjson.Get(mustMarshal(t, got), "two_way.rejected.0.param").Str != "email" {
		t.Fatalf("the API's run lacks the refused row: %v", got)
	}
	page := login(t, f).get("/runs/"+itoa(r.ID), http.StatusOK)
	for _, want := range []string{`id="run-two-way"`, `<td class="mono">` + id + `</td>`, "Invalid email address: no-at-sign"} {
		if !strings.Contains(page, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
