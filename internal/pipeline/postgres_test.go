package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// pgSchemaURL is STRIPELINE_TEST_POSTGRES with a fresh schema, dropped
// after the test; the test is skipped when the variable is unset.
func pgSchemaURL(t *testing.T, prefix string) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the PostgreSQL store is not tested")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
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
	return u.String()
}

// TestPostgresStore runs the service on a PostgreSQL control store (River's
// pgx driver) into a PostgreSQL replica: a run, its record and log, and a
// second run refused while one is queued.
func TestPostgresStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := pgSchemaURL(t, "stripeline_store_")
	replica := pgSchemaURL(t, "stripeline_replica_")
	f := newFixture(t, pipeline.Options{Store: store, KeyFile: t.TempDir() + "/store.key"})
	p := f.pipeline("pg")
	p.Dest = replica
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Nothing works runs yet: the first is queued, a second refused.
	run, err := f.svc.Run(ctx, "pg", pipeline.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Run(ctx, "pg", pipeline.TriggerManual); err == nil {
		t.Fatal("a second run while one is queued was not refused")
	}
	worker := reopen(t, f, pipeline.Options{Work: true, KeyFile: t.TempDir() + "/store.key"})
	done, err := worker.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != pipeline.RunSucceeded || done.Rows == 0 {
		t.Fatalf("run: %+v", done)
	}
	lines, err := f.svc.Logs(ctx, run.ID, 0, 0)
	if err != nil || len(lines) < 2 {
		t.Fatalf("log: %v %d lines", err, len(lines))
	}
	d, err := dest.Open(ctx, replica)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := replicacheck.Compare(ctx, d.(dest.Querier), f.emu, "", testStreams); err != nil {
		t.Fatal(err)
	}
}
