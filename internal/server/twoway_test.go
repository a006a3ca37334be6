package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
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

func TestUIFormSetsTwoWay(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	b := login(t, f)
	form := url.Values{
		"name": {"acme"}, "key_mode": {"env"}, "key_env": {"STRIPE_API_KEY_ACME"}, "api_base": {f.emuURL},
		"dest": {"sqlite://" + filepath.Join(f.dir, "acme.db")}, "streams": {"customers", "prices"}, "schedule_kind": {"manual"},
		"two_way": {"customers: email, name\nprices: active, unit_amount"}, "two_way_conflicts": {"newest-wins"},
	}
	r := b.post("/new", form)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "prices.unit_amount cannot be two-way") || !strings.Contains(string(r.Body), "customers: email, name") {
		t.Fatalf("a field the update lacks: %d\n%s", r.Status, r.Body)
	}
	form.Set("two_way", "customers: email, name\nprices: active")
	if r := b.post("/new", form); r.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	p, err := f.svc.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.TwoWay == nil || strings.Join(p.TwoWay.Streams["customers"], ",") != "email,name" || p.TwoWay.Conflicts != "newest-wins" {
		t.Fatalf("created two_way %+v", p.TwoWay)
	}
	page := b.get("/pipelines/acme/edit", http.StatusOK)
	if !strings.Contains(page, "customers: email, name\nprices: active") || !strings.Contains(page, `value="newest-wins" selected`) {
		t.Fatalf("the edit form does not show the two-way option:\n%s", page)
	}
	form.Set("two_way", "")
	form.Del("name")
	if r := b.post("/pipelines/acme/edit", form); r.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	if p, _ := f.svc.Get(context.Background(), "acme"); p.TwoWay != nil {
		t.Fatalf("an empty two-way field left %+v", p.TwoWay)
	}
}
