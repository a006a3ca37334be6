package desttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema returns STRIPELINE_TEST_POSTGRES with a fresh schema named
// prefix_<random>, dropped when the test ends, so parallel tests never share
// tables. When the variable is unset the test is skipped with a message
// saying what goes untested (what: "webhooks into PostgreSQL", …).
func PostgresSchema(t testing.TB, prefix, what string) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: " + what + " not tested")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
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
