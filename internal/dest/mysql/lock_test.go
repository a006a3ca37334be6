package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
)

// TestLockLostWithConnection: when the server kills the connection
// holding a run lock, Lost is closed and the pipeline can be locked again.
func TestLockLostWithConnection(t *testing.T) {
	base := serverURL(t)
	u := withDatabase(t, base)
	mysql.SetLockWatch(t, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := mysql.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := d.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 1, RunID: "r1", Since: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	dsn, _, err := mysql.DSN(u)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var id int64
	parsed, _ := url.Parse(u)
	db := strings.TrimPrefix(parsed.Path, "/")
	if err := admin.QueryRowContext(ctx, "SELECT connection_id FROM `"+db+"`."+dest.LocksTable+" WHERE pipeline = 'p'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-ctx.Done():
		t.Fatal("Lost was not closed after the connection was killed")
	}
	l2, err := d.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 2, RunID: "r2", Since: time.Now()}, Wait: time.Minute})
	if err != nil {
		t.Fatalf("Lock after the holder's connection ended: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Error(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock of a lost lock: %v", err)
	}
}

// TestConcurrentFirstOpens: several destinations opened at once on one new
// database, each creating the same table (half of them with one more
// column), all succeed and can write.
func TestConcurrentFirstOpens(t *testing.T) {
	u := withDatabase(t, serverURL(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			d, err := mysql.Open(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			errs <- desttest.MigrateAndWrite(ctx, d, i)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
