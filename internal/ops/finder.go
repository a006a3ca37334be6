package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// SearchFinder finds objects with the stream's search endpoint, e.g.
// metadata['external_id']:'42'. Search lags writes by up to a minute, so an
// object created moments ago may not be found yet; loads stay safe anyway
// because a re-sent create carries the same idempotency key.
type SearchFinder struct {
	Client Client
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_\-.]+$`)

// searchField turns a key path into a search query field:
// ["email"] → email, ["metadata","external_id"] → metadata['external_id'].
func searchField(key []string) (string, error) {
	switch {
	case len(key) == 1 && safeName.MatchString(key[0]):
		return key[0], nil
	case len(key) == 2 && key[0] == "metadata" && safeName.MatchString(key[1]):
		return "metadata['" + key[1] + "']", nil
	}
	return "", fmt.Errorf("cannot search on %s: use a top-level field (email) or metadata[key]", FormatKey(key))
}

// SearchQuery is the search query matching key = value exactly.
func SearchQuery(key []string, value string) (string, error) {
	f, err := searchField(key)
	if err != nil {
		return "", err
	}
	v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value)
	return f + ":'" + v + "'", nil
}

// Find implements Finder.
func (f *SearchFinder) Find(ctx context.Context, s catalog.Stream, key []string, value string) ([]string, error) {
	q, err := SearchQuery(key, value)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = f.Client.Search(ctx, s.Path+"/search", map[string][]string{"query": {q}, "limit": {"2"}}, 2, func(obj json.RawMessage) error {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(obj, &head); err != nil {
			return err
		}
		ids = append(ids, head.ID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search %s for %s: %w", s.Name, q, err)
	}
	return ids, nil
}

// ReplicaFinder finds objects in a replica written by `stripeline sync`
// (a SQL destination), e.g.
// SELECT id FROM customers WHERE json_extract(metadata,'$.external_id') = '42'.
// The replica is only as fresh as its last sync.
type ReplicaFinder struct {
	Q dest.Querier
	// Dialect is the destination's URL scheme: sqlite, postgres or mysql.
	Dialect string
}

// ErrReplicaUnsupported is returned for a destination that cannot answer
// SQL lookups (files).
var ErrReplicaUnsupported = errors.New("the destination cannot look objects up: use a sqlite://, postgres:// or mysql:// replica, or leave --dest out to use search")

// NewReplicaFinder wraps an opened destination. It fails for destinations
// that do not implement dest.Querier.
func NewReplicaFinder(d dest.Destination, scheme string) (*ReplicaFinder, error) {
	q, ok := d.(dest.Querier)
	if !ok {
		return nil, ErrReplicaUnsupported
	}
	switch scheme {
	case "sqlite", "sqlite3", "postgres", "postgresql", "mysql":
	default:
		return nil, ErrReplicaUnsupported
	}
	return &ReplicaFinder{Q: q, Dialect: scheme}, nil
}

// ReplicaQuery is the SQL that finds the ids of table rows whose key equals
// value, and its one argument (the value, bound to the ? placeholder).
// Names are checked against a safe alphabet; the value is never quoted
// into the SQL.
func ReplicaQuery(dialect, table string, key []string, value string) (string, []any, error) {
	if !safeName.MatchString(table) || strings.Contains(table, ".") {
		return "", nil, fmt.Errorf("table name %q is not safe to query", table)
	}
	col := key[0]
	if !safeName.MatchString(col) || strings.Contains(col, ".") {
		return "", nil, fmt.Errorf("cannot look up %s in the replica: bad column name", FormatKey(key))
	}
	for _, k := range key[1:] {
		if !safeName.MatchString(k) || strings.Contains(k, ".") {
			return "", nil, fmt.Errorf("cannot look up %s in the replica: use simple names (letters, digits, _ and -)", FormatKey(key))
		}
	}
	quote := func(s string) string { return `"` + s + `"` }
	var expr string
	switch dialect {
	case "sqlite", "sqlite3":
		expr = quote(col)
		if len(key) > 1 {
			expr = "json_extract(" + quote(col) + ", '$." + strings.Join(quotedPath(key[1:]), ".") + "')"
		}
	case "postgres", "postgresql":
		expr = quote(col)
		if len(key) > 1 {
			expr = "(" + quote(col) + "::jsonb #>> '{" + strings.Join(key[1:], ",") + "}')"
		}
	case "mysql":
		quote = func(s string) string { return "`" + s + "`" }
		expr = quote(col)
		if len(key) > 1 {
			expr = "JSON_UNQUOTE(JSON_EXTRACT(" + quote(col) + ", '$." + strings.Join(quotedPath(key[1:]), ".") + "'))"
		}
	default:
		return "", nil, ErrReplicaUnsupported
	}
	return "SELECT " + quote("id") + " FROM " + quote(table) + " WHERE " + expr + " = ?" +
		" AND (" + quote(dest.ColDeleted) + " IS NULL OR " + quote(dest.ColDeleted) + " = FALSE) LIMIT 2", []any{value}, nil
}

// quotedPath writes JSON path members as "$.\"a-b\"" so dashes are safe.
func quotedPath(p []string) []string {
	out := make([]string, len(p))
	for i, s := range p {
		out[i] = `"` + s + `"`
	}
	return out
}

// Find implements Finder.
func (f *ReplicaFinder) Find(ctx context.Context, s catalog.Stream, key []string, value string) ([]string, error) {
	q, args, err := ReplicaQuery(f.Dialect, s.Name, key, value)
	if err != nil {
		return nil, err
	}
	_, rows, err := f.Q.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("look up %s in the replica: %w", FormatKey(key), err)
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		if len(r) == 0 {
			continue
		}
		switch v := r[0].(type) {
		case string:
			ids = append(ids, v)
		case []byte:
			ids = append(ids, string(v))
		default:
			ids = append(ids, fmt.Sprint(v))
		}
	}
	return ids, nil
}
