package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
)

// serverURL returns STRIPELINE_TEST_MYSQL or skips.
func serverURL(t testing.TB) string {
	return desttest.FromEnv(t, "STRIPELINE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
}

// withDatabase creates a fresh database, dropped after the test, and
// returns the URL pointing at it.
func withDatabase(t testing.TB, base string) string {
	t.Helper()
	admin := adminDB(t, base)
	b := make([]byte, 6)
	rand.Read(b)
	name := "stripeline_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("STRIPELINE_TEST_MYSQL=%s: %v", dest.Redact(base), err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// adminDB connects to the server of base.
func adminDB(t testing.TB, base string) *sql.DB {
	t.Helper()
	dsn, _, err := mysql.DSN(base)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// withReadOnlyUser makes a user who may only read the database of dbURL,
// dropped after the test, and returns dbURL with that user.
func withReadOnlyUser(t *testing.T, base, dbURL string) string {
	t.Helper()
	admin := adminDB(t, base)
	u, _ := url.Parse(dbURL)
	db := strings.TrimPrefix(u.Path, "/")
	b := make([]byte, 6)
	rand.Read(b)
	user, pw := "sl_ro_"+hex.EncodeToString(b), hex.EncodeToString(b)
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + pw + "'",
		"GRANT SELECT ON `" + db + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", user, err)
		}
	})
	u.User = url.UserPassword(user, pw)
	return u.String()
}

func TestConformance(t *testing.T) {
	base := serverURL(t)
	mysql.SetLockWatch(t, 20*time.Millisecond)
	before := mysql.BulkFallbacks()
	var places desttest.Places
	desttest.RunWith(t, func(t *testing.T) dest.Destination {
		return places.Open(t, withDatabase(t, base))
	}, desttest.Options{
		Caps:   desttest.Caps{Query: true, Sweep: true, Lock: true, OnlyNewer: true, Drop: true},
		Reopen: places.Reopen,
		Fresh: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			return desttest.OpenAt(withDatabase(t, base))
		},
		OpenBroken: func(t *testing.T) func(context.Context) (dest.Destination, error) {
			return desttest.OpenSays(t, withReadOnlyUser(t, base, withDatabase(t, base)), "GRANT ALL ON")
		},
		EndSession: func(t *testing.T, d dest.Destination, pipeline string) {
			killLockConnection(t, base, places.URL(d), pipeline)
		},
	})
	// New rows, odd values included, went in through LOAD DATA as sent.
	if n := mysql.BulkFallbacks() - before; n != 0 {
		t.Errorf("%d batches fell back from LOAD DATA to upserts", n)
	}
}

// killLockConnection kills the connection that holds the run lock of
// pipeline in the database of dbURL.
func killLockConnection(t *testing.T, base, dbURL, pipeline string) {
	admin := adminDB(t, base)
	defer admin.Close()
	u, _ := url.Parse(dbURL)
	var id int64
	if err := admin.QueryRow("SELECT connection_id FROM `"+strings.TrimPrefix(u.Path, "/")+"`."+dest.LocksTable+" WHERE pipeline = ?", pipeline).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
}

// TestBulkLoadFallsBack makes LOAD DATA adjust a value (an id longer than
// the column): the batch is redone with upserts, which fail in strict mode
// rather than store a truncated id.
func TestBulkLoadFallsBack(t *testing.T) {
	d, err := dest.Open(context.Background(), withDatabase(t, serverURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tb := desttest.BenchTable
	if err := d.Migrate(context.Background(), tb); err != nil {
		t.Fatal(err)
	}
	row := desttest.BenchRow(1, 1)
	row.ID = strings.Repeat("x", 300)
	row.Values[0] = row.ID
	before := mysql.BulkFallbacks()
	err = d.Write(context.Background(), &dest.Batch{Table: tb, Rows: []dest.Row{row}})
	if mysql.BulkFallbacks() != before+1 {
		t.Errorf("no fallback after a truncated id (write error %v)", err)
	}
	rows, rerr := d.(dest.Reader).ReadRows(context.Background(), tb.Name)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil && (len(rows) != 1 || rows[0]["id"] != row.ID) {
		t.Errorf("write succeeded but stored %d rows: %v", len(rows), rows)
	}
	if err != nil && len(rows) != 0 {
		t.Errorf("write failed (%v) but left %d rows", err, len(rows))
	}
}

func TestDSN(t *testing.T) {
	got, db, err := mysql.DSN("mysql://root:p%40ss@127.0.0.1:3306/test")
	if err != nil {
		t.Fatal(err)
	}
	if db != "test" || !strings.HasPrefix(got, "root:p@ss@tcp(127.0.0.1:3306)/test?") || !strings.Contains(got, "charset=utf8mb4") {
		t.Errorf("DSN = %q (%s)", got, db)
	}
	if _, _, err := mysql.DSN("mysql://root@127.0.0.1:3306"); err == nil {
		t.Error("a URL without a database was accepted")
	}
}

func TestUnreachableServer(t *testing.T) {
	desttest.Unreachable(t, "mysql://someone:hunter2@127.0.0.1:1/db?timeout=2s", "mysql://someone:xxxxx@127.0.0.1:1/db", "check that MySQL/MariaDB is running")
}
