package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// TestAPIOnAPostgresStore runs the API over a PostgreSQL control store:
// the token's hash in its settings, a pipeline created, run and rotated
// past.
func TestAPIOnAPostgresStore(t *testing.T) {
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the server on a PostgreSQL store is not tested")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "stripeline_server_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()

	f := newFixture(t, fixtureOpts{store: u.String()})
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
