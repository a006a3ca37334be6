package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/postgres"
)

// TestConcurrentFirstOpens: several destinations opened at once on one new
// schema, each creating the same table (half of them with one more
// column), all succeed (CREATE SCHEMA and CREATE TABLE IF NOT EXISTS race
// on the catalog's unique indexes unless serialised) and can write.
func TestConcurrentFirstOpens(t *testing.T) {
	dsn, _ := withSchema(t, serverURL(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := postgres.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			errs <- desttest.MigrateAndWrite(ctx, d, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestLockLostWithSession: when the server ends the session holding a
// run lock, Lost is closed and the pipeline can be locked again.
func TestLockLostWithSession(t *testing.T) {
	base := serverURL(t)
	dsn, schema := withSchema(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := d.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 1, RunID: "r1", Since: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ok bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend("backend_pid") FROM `+pgx.Identifier{schema, dest.LocksTable}.Sanitize()+` WHERE "pipeline" = 'p'`).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the lock's session: %v %v", ok, err)
	}
	select {
	case <-l.Lost():
	case <-ctx.Done():
		t.Fatal("Lost was not closed after the session ended")
	}
	l2, err := d.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 2, RunID: "r2", Since: time.Now()}, Wait: time.Minute})
	if err != nil {
		t.Fatalf("Lock after the holder's session ended: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Error(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock of a lost lock: %v", err)
	}
}
