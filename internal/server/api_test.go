package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/pipeline"
)

func TestAPIPipelineLifecycle(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	created := f.create("acme")
	if created["name"] != "acme" || created["schedule"] != "manual" {
		t.Fatalf("created %v", created)
	}
	if st := created["status"].(map[string]any); st["state"] != "pending" || st["tables"] != float64(len(testStreams)) {
		t.Fatalf("new pipeline status %v, want pending with %d tables", st, len(testStreams))
	}
	if loc := f.api("GET", "/api/v1/pipelines/acme", nil, http.StatusOK); !strings.Contains(string(loc.Body), `"display_name": "Acme acme"`) {
		t.Fatalf("get: %s", loc.Body)
	}

	var list struct {
		Pipelines []map[string]any `json:"pipelines"`
	}
	f.create("beta")
	f.api("GET", "/api/v1/pipelines", nil, http.StatusOK).JSON(t, &list)
	if len(list.Pipelines) != 2 || list.Pipelines[0]["name"] != "acme" || list.Pipelines[1]["name"] != "beta" {
		t.Fatalf("list %v", list)
	}

	// PATCH changes what it names and keeps the rest.
	var patched map[string]any
	f.api("PATCH", "/api/v1/pipelines/acme", map[string]any{"display_name": "Acme (test)", "schedule": "every 2h", "lookback_days": 3}, http.StatusOK).JSON(t, &patched)
	if patched["display_name"] != "Acme (test)" || patched["schedule"] != "every 2h" || patched["lookback_days"] != float64(3) {
		t.Fatalf("patched %v", patched)
	}
	if diff := cmp.Diff(created["streams"], patched["streams"]); diff != "" || patched["dest"] != created["dest"] {
		t.Fatalf("PATCH changed what it did not name: streams %s, dest %v → %v", diff, created["dest"], patched["dest"])
	}
	if st := patched["status"].(map[string]any); st["next_run"] == nil {
		t.Fatalf("a scheduled pipeline shows no next run: %v", st)
	}

	var paused map[string]any
	f.api("POST", "/api/v1/pipelines/acme/pause", nil, http.StatusOK).JSON(t, &paused)
	if st := paused["status"].(map[string]any); st["state"] != "paused" || st["paused"] != true || st["next_run"] != nil {
		t.Fatalf("paused status %v", st)
	}
	var e apiErr
	f.api("POST", "/api/v1/pipelines/acme/runs", nil, http.StatusConflict).JSON(t, &e)
	if e.Error.Code != "paused" || !strings.Contains(e.Error.Message, "resume") {
		t.Fatalf("run while paused: %+v", e)
	}
	var resumed map[string]any
	f.api("POST", "/api/v1/pipelines/acme/resume", nil, http.StatusOK).JSON(t, &resumed)
	if st := resumed["status"].(map[string]any); st["state"] != "pending" || st["paused"] != false {
		t.Fatalf("resumed status %v", st)
	}

	f.api("DELETE", "/api/v1/pipelines/beta", nil, http.StatusBadRequest).JSON(t, &e)
	if e.Error.Field != "tables" || !strings.Contains(e.Error.Message, "?tables=keep") {
		t.Fatalf("delete without a choice: %+v", e)
	}
	f.api("DELETE", "/api/v1/pipelines/beta?tables=keep", nil, http.StatusOK)
	f.api("GET", "/api/v1/pipelines/beta", nil, http.StatusNotFound).JSON(t, &e)
	if e.Error.Code != "not_found" {
		t.Fatalf("deleted pipeline: %+v", e)
	}
}

func TestAPIRunNowRefusesASecondRunAndStreamsTheLog(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	f.create("acme")
	var run pipeline.Run
	f.api("POST", "/api/v1/pipelines/acme/runs", nil, http.StatusAccepted).JSON(t, &run)
	if run.Status != pipeline.RunQueued || run.Trigger != pipeline.TriggerAPI {
		t.Fatalf("run %+v, want queued by the api", run)
	}
	// No worker has started: the first run is certainly still queued.
	var e apiErr
	f.api("POST", "/api/v1/pipelines/acme/runs", nil, http.StatusConflict).JSON(t, &e)
	if e.Error.Code != "busy" || e.Error.Run != run.ID || !strings.Contains(e.Error.Message, "queued") {
		t.Fatalf("second run: %+v, want busy naming run %d", e, run.ID)
	}
	f.start()

	// follow=1 streams the lines as Server-Sent Events, then the ended run.
	ev := f.api("GET", "/api/v1/runs/"+itoa(run.ID)+"/logs?follow=1", nil, http.StatusOK)
	if ct := ev.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	body := string(ev.Body)
	if !strings.Contains(body, "event: line\n") || !strings.Contains(body, `"msg":"run started"`) || !strings.Contains(body, `"msg":"run succeeded"`) {
		t.Fatalf("event stream lacks the run's lines:\n%s", body)
	}
	end := body[strings.LastIndex(body, "event: end\n"):]
	if !strings.Contains(end, `"status":"succeeded"`) {
		t.Fatalf("the stream does not end with the succeeded run:\n%s", end)
	}

	var got pipeline.Run
	f.api("GET", "/api/v1/runs/"+itoa(run.ID), nil, http.StatusOK).JSON(t, &got)
	if got.Status != pipeline.RunSucceeded || got.Rows == 0 || len(got.Streams) < len(testStreams) {
		t.Fatalf("run %+v", got)
	}
	var runs struct {
		Runs       []pipeline.Run `json:"runs"`
		NextBefore int64          `json:"next_before"`
	}
	f.api("GET", "/api/v1/pipelines/acme/runs?limit=1", nil, http.StatusOK).JSON(t, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID || runs.NextBefore != run.ID {
		t.Fatalf("runs page %+v", runs)
	}
	runs.Runs = nil
	f.api("GET", "/api/v1/pipelines/acme/runs?before="+itoa(run.ID), nil, http.StatusOK).JSON(t, &runs)
	if len(runs.Runs) != 0 {
		t.Fatalf("runs before the first: %+v", runs)
	}

	// Paged lines: limit, then next_after.
	var page struct {
		Lines     []pipeline.LogLine `json:"lines"`
		NextAfter int64              `json:"next_after"`
	}
	f.api("GET", "/api/v1/runs/"+itoa(run.ID)+"/logs?limit=1", nil, http.StatusOK).JSON(t, &page)
	if len(page.Lines) != 1 || page.Lines[0].Msg != "run started" || page.NextAfter != page.Lines[0].Seq {
		t.Fatalf("first page %+v", page)
	}
	after := page.NextAfter
	page.Lines, page.NextAfter = nil, 0
	f.api("GET", "/api/v1/runs/"+itoa(run.ID)+"/logs?after="+itoa(after), nil, http.StatusOK).JSON(t, &page)
	if len(page.Lines) == 0 || page.Lines[len(page.Lines)-1].Msg != "run succeeded" || page.NextAfter != 0 {
		t.Fatalf("rest %+v", page)
	}

	// NDJSON for clients that ask for it.
	req, _ := http.NewRequest("GET", f.http.URL+"/api/v1/runs/"+itoa(run.ID)+"/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Accept", "application/x-ndjson")
	nd := f.send(req)
	lines := strings.Split(strings.TrimSpace(string(nd.Body)), "\n")
	if nd.Header.Get("Content-Type") != "application/x-ndjson" || !strings.HasPrefix(lines[len(lines)-1], `{"end":`) || !strings.Contains(lines[0], `"run started"`) {
		t.Fatalf("ndjson stream:\n%s", nd.Body)
	}
}

func TestAPIErrorsNameTheFieldAndTheFix(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	f.create("acme")
	with := func(change map[string]any) map[string]any {
		body := f.pipelineJSON("other")
		for k, v := range change {
			body[k] = v
		}
		return body
	}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field, says  string
	}{
		{"not JSON", "POST", "/api/v1/pipelines", "{", 400, "invalid", "", "not valid JSON"},
		{"no body", "POST", "/api/v1/pipelines", "", 400, "invalid", "", "JSON body"},
		{"unknown field", "POST", "/api/v1/pipelines", with(map[string]any{"stremas": []string{"x"}}), 400, "invalid", "stremas", "unknown field"},
		{"wrong type", "POST", "/api/v1/pipelines", with(map[string]any{"lookback_days": "three"}), 400, "invalid", "lookback_days", "expected a number"},
		{"no name", "POST", "/api/v1/pipelines", with(map[string]any{"name": ""}), 400, "invalid", "name", "is required"},
		{"bad name", "POST", "/api/v1/pipelines", with(map[string]any{"name": "9/lives"}), 400, "invalid", "name", "start with a letter"},
		{"taken name", "POST", "/api/v1/pipelines", f.pipelineJSON("acme"), 409, "exists", "name", "pick another name"},
		{"bad schedule", "POST", "/api/v1/pipelines", with(map[string]any{"schedule": "often"}), 400, "invalid", "schedule", "every 15m"},
		{"short interval", "POST", "/api/v1/pipelines", with(map[string]any{"schedule": "every 5s"}), 400, "invalid", "schedule", "too short"},
		{"bad cron", "POST", "/api/v1/pipelines", with(map[string]any{"schedule": "cron 99 * * * *"}), 400, "invalid", "schedule", "cron expression"},
		{"no dest", "POST", "/api/v1/pipelines", with(map[string]any{"dest": ""}), 400, "invalid", "dest", "sqlite://"},
		{"bad dest", "POST", "/api/v1/pipelines", with(map[string]any{"dest": "oracle://db"}), 400, "invalid", "dest", "use one of"},
		{"unknown stream", "POST", "/api/v1/pipelines", with(map[string]any{"streams": []string{"custmers"}}), 400, "invalid", "streams", "stripeline streams"},
		{"two-way field the update lacks", "POST", "/api/v1/pipelines", with(map[string]any{"two_way": map[string]any{"streams": map[string]any{"customers": []string{"email", "livemode"}}}}), 400, "invalid", "two_way", "customers.livemode cannot be two-way"},
		{"two-way policy", "POST", "/api/v1/pipelines", with(map[string]any{"two_way": map[string]any{"streams": map[string]any{"customers": []string{"email"}}, "conflicts": "loudest"}}), 400, "invalid", "two_way.conflicts", "not a policy"},
		{"bad start date", "POST", "/api/v1/pipelines", with(map[string]any{"start_date": "last year"}), 400, "invalid", "start_date", "YYYY-MM-DD"},
		{"no key", "POST", "/api/v1/pipelines", with(map[string]any{"connection": map[string]any{"api_base": f.emuURL}}), 400, "invalid", "connection.api_key", "env:NAME"},
		{"bad key", "POST", "/api/v1/pipelines", with(map[string]any{"connection": map[string]any{"api_key": "pk_test_123"}}), 400, "invalid", "connection.api_key", "sk_test_"},
		{"bad account", "POST", "/api/v1/pipelines", with(map[string]any{"connection": map[string]any{"key_ref": "env:K", "account": "12"}}), 400, "invalid", "connection.account", "acct_"},
		{"rename", "PATCH", "/api/v1/pipelines/acme", map[string]any{"name": "other"}, 400, "invalid", "name", "never changes"},
		{"patch unknown", "PATCH", "/api/v1/pipelines/nope", map[string]any{"display_name": "x"}, 404, "not_found", "", "nope"},
		{"get unknown", "GET", "/api/v1/pipelines/nope", nil, 404, "not_found", "", "nope"},
		{"pause unknown", "POST", "/api/v1/pipelines/nope/pause", nil, 404, "not_found", "", "nope"},
		{"resume unknown", "POST", "/api/v1/pipelines/nope/resume", nil, 404, "not_found", "", "nope"},
		{"run unknown", "POST", "/api/v1/pipelines/nope/runs", nil, 404, "not_found", "", "nope"},
		{"runs of unknown", "GET", "/api/v1/pipelines/nope/runs", nil, 404, "not_found", "", "nope"},
		{"delete unknown", "DELETE", "/api/v1/pipelines/nope?tables=keep", nil, 404, "not_found", "", "nope"},
		{"delete odd choice", "DELETE", "/api/v1/pipelines/acme?tables=maybe", nil, 400, "invalid", "tables", "neither keep nor drop"},
		{"limit too big", "GET", "/api/v1/pipelines/acme/runs?limit=5000", nil, 400, "invalid", "limit", "from 1 to 200"},
		{"bad run id", "GET", "/api/v1/runs/abc", nil, 400, "invalid", "id", "not a run id"},
		{"unknown run", "GET", "/api/v1/runs/999999", nil, 404, "not_found", "", "999999"},
		{"logs of unknown run", "GET", "/api/v1/runs/999999/logs", nil, 404, "not_found", "", "999999"},
		{"bad follow", "GET", "/api/v1/runs/1/logs?follow=yes", nil, 400, "invalid", "follow", "not 1 or 0"},
		{"unknown route", "GET", "/api/v1/nothing", nil, 404, "not_found", "", "openapi.json"},
		{"test without key", "POST", "/api/v1/connections/test", map[string]any{"connection": map[string]any{"api_base": f.emuURL}}, 400, "invalid", "connection.api_key", "env:NAME"},
		{"test with rejected key", "POST", "/api/v1/connections/test", map[string]any{"connection": map[string]any{"api_key": "sk_test_bad-key-0000", "api_base": f.emuURL}}, 422, "stripe_auth", "connection.api_key", "sk_test_…0000"},
		{"test of unknown pipeline", "POST", "/api/v1/connections/test", map[string]any{"pipeline": "nope"}, 404, "not_found", "", "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(c.method, c.path, f.token, c.body)
			var e apiErr
			r.JSON(t, &e)
			if r.Status != c.status || e.Error.Code != c.code || e.Error.Field != c.field || !strings.Contains(e.Error.Message, c.says) {
				t.Fatalf("%s %s: %d %+v; want %d code %q field %q saying %q", c.method, c.path, r.Status, e.Error, c.status, c.code, c.field, c.says)
			}
			if strings.Contains(string(r.Body), "bad-key-0000") {
				t.Fatalf("the error repeats the key: %s", r.Body)
			}
		})
	}
}

func TestAPIAuthentication(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	for _, c := range []struct{ name, auth, says string }{
		{"no token", "", "Authorization: Bearer"},
		{"wrong token", "stl_notthetoken", "not the server's token"},
	} {
		r := f.do("GET", "/api/v1/pipelines", c.auth, nil)
		var e apiErr
		r.JSON(t, &e)
		if r.Status != http.StatusUnauthorized || e.Error.Code != "unauthorized" || !strings.Contains(e.Error.Message, c.says) || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %+v", c.name, r.Status, e)
		}
	}
	// The document, health and metrics (from loopback) need no token.
	for _, p := range []string{"/api/v1/openapi.json", "/healthz", "/metrics"} {
		if r := f.do("GET", p, "", nil); r.Status != http.StatusOK {
			t.Errorf("GET %s without a token: %d", p, r.Status)
		}
	}
	// A rotated token locks the old one out.
	old := f.token
	f.api("GET", "/api/v1/pipelines", nil, http.StatusOK)
	rotated := rotate(t, f)
	if r := f.do("GET", "/api/v1/pipelines", old, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("old token after rotation: %d", r.Status)
	}
	if r := f.do("GET", "/api/v1/pipelines", rotated, nil); r.Status != http.StatusOK {
		t.Fatalf("new token: %d %s", r.Status, r.Body)
	}
}

func TestAPIConnectionTestAndStreams(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	var rep pipeline.CheckReport
	f.api("POST", "/api/v1/connections/test", map[string]any{"connection": map[string]any{"key_ref": "env:STRIPE_API_KEY_ACME", "api_base": f.emuURL}}, http.StatusOK).JSON(t, &rep)
	if rep.Account.ID == "" || rep.Mode != "test" || rep.Readable == 0 || string(rep.Key) != "sk_test_…acme" {
		t.Fatalf("report %+v", rep)
	}
	// A saved pipeline with a stored key tests with that key.
	body := f.pipelineJSON("stored")
	body["connection"] = map[string]any{"api_key": "sk_test_storedsecret9876", "api_base": f.emuURL}
	var p map[string]any
	f.api("POST", "/api/v1/pipelines", body, http.StatusCreated).JSON(t, &p)
	if c := p["connection"].(map[string]any); c["key_hint"] != "sk_test_…9876" || c["key_ref"] != "stored" {
		t.Fatalf("stored key shows as %v", c)
	}
	r := f.api("POST", "/api/v1/connections/test", map[string]any{"pipeline": "stored"}, http.StatusOK)
	r.JSON(t, &rep)
	if string(rep.Key) != "sk_test_…9876" || strings.Contains(string(r.Body), "storedsecret") {
		t.Fatalf("stored key test: %s", r.Body)
	}

	var streams struct {
		SpecVersion string `json:"spec_version"`
		Streams     []struct {
			Name    string           `json:"name"`
			Default bool             `json:"default"`
			Columns []catalog.Column `json:"columns"`
		} `json:"streams"`
	}
	f.api("GET", "/api/v1/streams", nil, http.StatusOK).JSON(t, &streams)
	if len(streams.Streams) != len(catalog.All()) || streams.SpecVersion != catalog.SpecVersion() {
		t.Fatalf("%d streams of spec %s, want %d of %s", len(streams.Streams), streams.SpecVersion, len(catalog.All()), catalog.SpecVersion())
	}
	defaults := 0
	for _, s := range streams.Streams {
		if s.Name == "customers" && (len(s.Columns) == 0 || s.Columns[0].Name != "id") {
			t.Errorf("customers columns %v", s.Columns)
		}
		if s.Default {
			defaults++
		}
	}
	if defaults != len(catalog.Defaults()) {
		t.Errorf("%d default streams, want %d", defaults, len(catalog.Defaults()))
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	r := f.do("GET", "/healthz", "", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"status": "ok"`) {
		t.Fatalf("healthz %d %s", r.Status, r.Body)
	}
	f.svc.Close()
	if r := f.do("GET", "/healthz", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the store closed: %d %s", r.Status, r.Body)
	}
}

func rotate(t *testing.T, f *fixture) string {
	t.Helper()
	tok, err := serverRotate(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	f.token = tok
	return tok
}
