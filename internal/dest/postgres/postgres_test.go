package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/postgres"
)

// serverURL returns STRIPELINE_TEST_POSTGRES (with the user root when the
// user postgres cannot log in), or skips.
func serverURL(t testing.TB) string {
	t.Helper()
	raw := desttest.FromEnv(t, "STRIPELINE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, raw)
	if err == nil {
		c.Close(ctx)
		return raw
	}
	u, perr := url.Parse(raw)
	if perr == nil && u.User != nil && u.User.Username() == "postgres" {
		u.User = url.User("root")
		if c, err2 := pgx.Connect(ctx, u.String()); err2 == nil {
			c.Close(ctx)
			return u.String()
		}
	}
	t.Fatalf("STRIPELINE_TEST_POSTGRES=%s: %v", dest.Redact(raw), err)
	return ""
}

// withSchema opens a destination in a fresh random schema dropped after the test.
func withSchema(t testing.TB, base string) (string, string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "stripeline_test_" + hex.EncodeToString(b)
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
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
	return u.String(), schema
}

func TestConformance(t *testing.T) {
	base := serverURL(t)
	var places desttest.Places
	desttest.RunWith(t, func(t *testing.T) dest.Destination {
		dsn, _ := withSchema(t, base)
		return places.Open(t, dsn)
	}, desttest.Options{
		Caps:   desttest.Caps{Query: true, Sweep: true, Lock: true, OnlyNewer: true, Drop: true},
		Reopen: places.Reopen,
		// Several first opens of one new schema race on CREATE SCHEMA and
		// CREATE TABLE IF NOT EXISTS (the catalog's unique indexes) unless
		// serialised.
		Fresh: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			dsn, _ := withSchema(t, base)
			return desttest.OpenAt(dsn)
		},
		OpenBroken: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			dsn, _ := withSchema(t, withRole(t, base))
			return desttest.OpenSays(t, dsn, "grant the user CREATE")
		},
		EndSession: func(t *testing.T, d dest.Destination, pipeline string) {
			u, _ := url.Parse(places.URL(d))
			ctx := context.Background()
			admin, err := pgx.Connect(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(ctx)
			var ok bool
			err = admin.QueryRow(ctx, `SELECT pg_terminate_backend("backend_pid"::integer) FROM `+pgx.Identifier{u.Query().Get("schema"), dest.LocksTable}.Sanitize()+
				` WHERE "pipeline" = $1`, pipeline).Scan(&ok)
			if err != nil || !ok {
				t.Fatalf("terminate the lock's session: %v %v", ok, err)
			}
		},
	})
}

// withRole makes a login role without any privilege (in particular no
// CREATE on the database), dropped after the test, and returns base with
// that role as the user.
func withRole(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	role, pw := "stripeline_norights_"+hex.EncodeToString(b), hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD '"+pw+"'"); err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	var can bool
	if err := admin.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", role).Scan(&can); err != nil || can {
		t.Skipf("a new role may create schemas in this database (%v); cannot test a role without CREATE", err)
	}
	u, _ := url.Parse(base)
	u.User = url.UserPassword(role, pw)
	return u.String()
}

func TestUnreachableServer(t *testing.T) {
	desttest.Unreachable(t, "postgres://someone:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "postgres://someone:xxxxx@127.0.0.1:1", "check that PostgreSQL is running")
}

func TestDefaultSchemaAndQuery(t *testing.T) {
	base := serverURL(t)
	dsn, schema := withSchema(t, base)
	ctx := context.Background()
	d, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cols, rows, err := d.Query(ctx, `SELECT count(*) AS n, current_schema() AS s FROM _stripeline_runs`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || rows[0][0] != int64(0) || rows[0][1] != schema {
		t.Errorf("Query = %v %v, want n=0 in schema %s", cols, rows, schema)
	}
	if _, _, err := d.Query(ctx, `DELETE FROM _stripeline_runs`); err == nil {
		t.Error("Query ran a write statement")
	}
}

// TestConcurrentWritersSameNewIDs: writers racing to insert the same new
// ids (each looks them up, finds none and copies them in) all succeed; the
// losers of the race are merged through the staging table.
func TestConcurrentWritersSameNewIDs(t *testing.T) {
	dsn, _ := withSchema(t, serverURL(t))
	ctx := context.Background()
	tb := desttest.BenchTable
	var ds []dest.Destination
	for i := 0; i < 4; i++ {
		d, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Migrate(ctx, tb); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	errs := make(chan error, len(ds))
	for v, d := range ds {
		go func() {
			rows := make([]dest.Row, 300)
			for i := range rows {
				rows[i] = desttest.BenchRow(i, v)
			}
			errs <- d.Write(ctx, &dest.Batch{Table: tb, Rows: rows})
		}()
	}
	for range ds {
		if err := <-errs; err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	got, err := ds[0].(dest.Reader).ReadRows(ctx, tb.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 {
		t.Errorf("%d rows, want 300", len(got))
	}
}
