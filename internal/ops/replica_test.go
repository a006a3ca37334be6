package ops

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/stripeline/stripeline/internal/catalog"
)

// sqlQuerier runs dest.Querier's Query over database/sql.
type sqlQuerier struct{ db *sql.DB }

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) ([]string, [][]any, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

// TestReplicaFinderSQLite runs the replica lookup SQL on a SQLite table
// shaped like the replica's (metadata as JSON text, soft deletes).
func TestReplicaFinderSQLite(t *testing.T) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT, metadata TEXT, _stripeline_deleted BOOLEAN)`,
		`INSERT INTO customers VALUES ('cus_1', 'a@b.c', '{"external_id":"e1","ext-dash":"d"}', FALSE)`,
		`INSERT INTO customers VALUES ('cus_2', 'o''k@b.c', '{"external_id":"it''s"}', NULL)`,
		`INSERT INTO customers VALUES ('cus_3', 'gone@b.c', '{"external_id":"e3"}', TRUE)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	f := &ReplicaFinder{Q: sqlQuerier{db}, Dialect: "sqlite"}
	s := catalog.Stream{Name: "customers", Path: "/v1/customers"}
	tests := []struct {
		key   []string
		value string
		want  int
	}{
		{[]string{"metadata", "external_id"}, "e1", 1},
		{[]string{"metadata", "external_id"}, "it's", 1},
		{[]string{"metadata", "ext-dash"}, "d", 1},
		{[]string{"metadata", "external_id"}, "e3", 0}, // deleted upstream
		{[]string{"email"}, "o'k@b.c", 1},
		{[]string{"email"}, "' OR 1=1 --", 0},
	}
	for _, tt := range tests {
		ids, err := f.Find(context.Background(), s, tt.key, tt.value)
		if err != nil || len(ids) != tt.want {
			t.Errorf("Find(%v, %q) = %v, %v; want %d ids", tt.key, tt.value, ids, err, tt.want)
		}
	}
}
