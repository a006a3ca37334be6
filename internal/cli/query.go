package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all" // every destination scheme
	"github.com/stripeline/stripeline/internal/history"
)

func newQueryCmd(a *App) *cobra.Command {
	var dstFlag, asOf string
	cmd := &cobra.Command{
		Use:   "query SQL",
		Short: "Run a read-only SQL query against a replica (SQLite, PostgreSQL, MySQL)",
		Long: `query runs one SQL statement against the replica and prints the result
(--format table|csv|json). Statements run read-only. On PostgreSQL the
replica's schema comes first in the search path.

With --as-of TIME (RFC 3339, or YYYY-MM-DD for midnight UTC) the SELECT answers
as the replica was at that moment, from its change history: the tables that
changed since are read as temporary copies with those changes undone.`,
		Example: `  stripeline query "SELECT count(*) FROM customers" --dest sqlite://stripeline.db
  stripeline query "SELECT id, email FROM customers LIMIT 5" --format csv
  stripeline query --as-of 2026-11-01T00:00:00Z "SELECT id, email, metadata FROM customers"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return usagef("the SQL query is empty")
			}
			u := a.destURL(dstFlag)
			if scheme := schemeOf(u); scheme == "csv" || scheme == "jsonl" || scheme == "parquet" {
				return usagef("--dest %s cannot run SQL: query works on sqlite://, postgres:// and mysql:// replicas; use export for files", dest.Redact(u))
			}
			dst, err := a.openReplica(cmd.Context(), u)
			if err != nil {
				return err
			}
			defer dst.Close()
			q, ok := dst.(dest.Querier)
			if !ok {
				return usagef("--dest %s cannot run SQL: query works on sqlite://, postgres:// and mysql:// replicas; use export for files", dest.Redact(u))
			}
			var at time.Time
			if asOf != "" {
				if at, err = parseAsOf(asOf); err != nil {
					return err
				}
			}
			var cols []string
			var rows [][]any
			if asOf != "" {
				cols, rows, err = history.AsOf(cmd.Context(), dst, at, args[0])
			} else {
				cols, rows, err = q.Query(cmd.Context(), args[0])
			}
			if err != nil {
				return fmt.Errorf("query %s: %w", dest.Redact(u), err)
			}
			return writeRows(a.Stdout, a.Format, cols, rows)
		},
	}
	cmd.Flags().StringVar(&dstFlag, "dest", "", "replica URL (default: config dest, else sqlite://stripeline.db)")
	cmd.Flags().StringVar(&asOf, "as-of", "", "answer as the replica was at this time (RFC 3339, e.g. 2026-11-01T00:00:00Z, or YYYY-MM-DD)")
	return cmd
}

// parseAsOf reads --as-of.
func parseAsOf(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--as-of %q is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)", s)
}

func schemeOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme
}

// openReplica opens an existing replica for reading. A SQLite file or an
// export directory that is not there is an error, not a new empty replica
// left behind by a typo.
func (a *App) openReplica(ctx context.Context, rawURL string) (dest.Destination, error) {
	if u, err := url.Parse(rawURL); err == nil {
		if path, local := localPath(u); local && path != "" && path != ":memory:" {
			if _, err := os.Stat(a.path(path)); err != nil {
				return nil, fmt.Errorf("no replica at --dest %s: %s does not exist (sync into it first: stripeline sync --dest %s)", dest.Redact(rawURL), path, dest.Redact(rawURL))
			}
		}
	}
	return a.openDest(ctx, rawURL)
}

// openDest opens the destination at rawURL, its relative path (if any)
// taken from the working directory.
func (a *App) openDest(ctx context.Context, rawURL string) (dest.Destination, error) {
	return dest.Open(ctx, a.localURL(rawURL))
}
