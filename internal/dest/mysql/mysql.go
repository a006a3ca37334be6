// Package mysql is the MySQL/MariaDB destination
// (mysql://user:pass@host:3306/db): rows with ids the table does not hold
// yet are loaded with LOAD DATA LOCAL INFILE streamed from memory, the
// others go through multi-row INSERT … ON DUPLICATE KEY UPDATE in chunks;
// JSON columns, utf8mb4, and the checkpoint in the same transaction as
// its rows. The rest is the SQL core (sqldest) over this package's
// dialect.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

func init() {
	dest.Register("mysql", func(ctx context.Context, u *url.URL) (dest.Destination, error) { return Open(ctx, u.String()) })
}

// The core (sqldest.DB) asserts the optional interfaces.
var _ dest.Destination = (*Destination)(nil)

// connectTimeout bounds a connection attempt unless the URL sets timeout.
const connectTimeout = 15 * time.Second

// Destination is a replica in one MySQL or MariaDB database.
type Destination struct {
	*sqldest.DB
}

// DSN translates mysql://user:pass@host:port/db?params into the driver's
// DSN, with utf8mb4 and no time parsing, and returns the database's name.
func DSN(rawURL string) (string, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" && u.Host != "" {
		cfg.Addr = u.Host + ":3306"
	}
	if strings.HasPrefix(u.Host, "unix(") || u.Query().Get("socket") != "" {
		cfg.Net, cfg.Addr = "unix", u.Query().Get("socket")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		return "", "", errors.New("no database in the URL")
	}
	// An unreachable server is an error, not a hang (the URL's timeout
	// parameter overrides it).
	cfg.Timeout = connectTimeout
	cfg.ParseTime = false
	cfg.MultiStatements = false
	// Arguments are escaped into the statement by the driver (safe with
	// utf8mb4) instead of a server-side PREPARE, EXECUTE and CLOSE for every
	// multi-row chunk: one round trip, and the server does not bind tens of
	// thousands of placeholders.
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_bin"
	cfg.Params = map[string]string{"charset": "utf8mb4"}
	for k, v := range u.Query() {
		if k == "socket" || len(v) == 0 {
			continue
		}
		switch k {
		case "tls":
			cfg.TLSConfig = v[0]
		case "timeout":
			if d, err := time.ParseDuration(v[0]); err == nil {
				cfg.Timeout = d
			}
		default:
			cfg.Params[k] = v[0]
		}
	}
	return cfg.FormatDSN(), cfg.DBName, nil
}

// Open connects, checks the server answers and creates the bookkeeping tables.
func Open(ctx context.Context, rawURL string) (*Destination, error) {
	fail := func(what string, err error) error {
		hint := "check that MySQL/MariaDB is running there, the database exists and the URL's user and password are right"
		switch what {
		case "parse":
			hint = "use mysql://user:password@host:3306/DATABASE"
		case "set up":
			hint = "the user needs CREATE, ALTER, SELECT, INSERT, UPDATE and DELETE on the database: GRANT ALL ON `" + dbNameOf(rawURL) + "`.* TO the user"
		}
		return fmt.Errorf("%s mysql destination %s: %s (%s)", what, dest.Redact(rawURL), dest.RedactErr(err, rawURL), hint)
	}
	dsn, dbName, err := DSN(rawURL)
	if err != nil {
		return nil, dest.BadURL(fail("parse", err))
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fail("open", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail("connect to", err)
	}
	core, err := sqldest.New(ctx, &dialect{db: db, dsn: dsn, dbName: dbName})
	if err != nil {
		return nil, fail("set up", err)
	}
	return &Destination{DB: core}, nil
}

// dbNameOf is the database a URL names, for hints.
func dbNameOf(rawURL string) string {
	_, name, _ := DSN(rawURL)
	return name
}

// MySQL error numbers.
const (
	errNoTable   = 1146 // ER_NO_SUCH_TABLE
	errDupColumn = 1060 // ER_DUP_FIELDNAME
	errDeadlock  = 1213 // ER_LOCK_DEADLOCK
)

// Kind classifies MySQL's error numbers, and a bulk load that must be
// redone with upserts.
func (*dialect) Kind(err error) sqldest.ErrorKind {
	if errors.Is(err, errBulkFallback) {
		return sqldest.KindRetry
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return sqldest.KindOther
	}
	switch me.Number {
	case errNoTable:
		return sqldest.KindNoTable
	case errDupColumn:
		return sqldest.KindDuplicateColumn
	case errDeadlock:
		return sqldest.KindRetry
	}
	return sqldest.KindOther
}
