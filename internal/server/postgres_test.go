package server_test

import (
	"net/http"
	"testing"

	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// TestAPIOnAPostgresStore runs the API over a PostgreSQL control store:
// the token's hash in its settings, a pipeline created, run and rotated
// past.
func TestAPIOnAPostgresStore(t *testing.T) {
	store := desttest.PostgresSchema(t, "stripeline_server", "the server on a PostgreSQL store is")

	f := newFixture(t, fixtureOpts{store: store})
	f.create("acme")
	if run := f.runAndWait("acme"); run.Status != pipeline.RunSucceeded || run.Rows == 0 {
		t.Fatalf("run on a PostgreSQL store: %+v", run)
	}
	old := f.token
	rotate(t, f)
	if r := f.do("GET", "/api/v1/pipelines/acme", old, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("the old token after rotation: %d", r.Status)
	}
	var p map[string]any
	f.api("GET", "/api/v1/pipelines/acme", nil, http.StatusOK).JSON(t, &p)
	if st := p["status"].(map[string]any); st["state"] != "active" {
		t.Fatalf("status %v", st)
	}
}
