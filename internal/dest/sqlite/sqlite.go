// Package sqlite is the SQLite destination (sqlite://PATH): a pure-Go,
// WAL-mode database written through one connection, with prepared per-row
// upserts and the checkpoint in the same transaction as the rows it
// covers; reads use a separate read-only pool, which WAL lets run beside a
// write. The rest is the SQL core (sqldest) over this package's dialect.
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

func init() {
	dest.Register("sqlite", func(ctx context.Context, u *url.URL) (dest.Destination, error) {
		return Open(ctx, PathFromURL(u))
	})
}

// The core (sqldest.DB) asserts the optional interfaces.
var _ dest.Destination = (*Destination)(nil)

// Destination is a replica in one SQLite file.
type Destination struct {
	*sqldest.DB
	path string
}

// PathFromURL turns sqlite://PATH into PATH: sqlite://stripeline.db,
// sqlite://./dir/x.db and sqlite:///abs/x.db all work.
func PathFromURL(u *url.URL) string {
	if u.Opaque != "" {
		return u.Opaque
	}
	return u.Host + u.Path
}

// Open opens (creating if needed) the database at path in WAL mode and
// creates the bookkeeping tables. A file that could not be set up is removed
// again if Open created it.
func Open(ctx context.Context, path string) (*Destination, error) {
	if path == "" {
		return nil, dest.BadURL(errors.New("sqlite destination: no path: use sqlite://PATH, e.g. sqlite://stripeline.db"))
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	db, err := open(ctx, path)
	if err != nil {
		if !existed {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(path + suffix)
			}
		}
		dir := filepath.Dir(path)
		return nil, fmt.Errorf("open sqlite://%s: %w (check that the directory %s exists and is writable, and the file is a SQLite database)", path, err, dir)
	}
	return &Destination{DB: db, path: path}, nil
}

func open(ctx context.Context, path string) (*sqldest.DB, error) {
	conn, err := sqlite3.OpenContext(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(`PRAGMA busy_timeout = 10000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -16384;`); err != nil {
		conn.Close()
		return nil, err
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
	readers, err := driver.Open(dsn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	readers.SetMaxOpenConns(4)
	return sqldest.New(ctx, &dialect{w: newWriter(conn), readers: readers})
}
