// Package replicacheck compares a replica with an account: every current
// object of a stream has exactly one live row whose columns equal the
// object's top-level fields, and every deleted object is flagged. The
// benchmarks and the tests use it to say a run was correct.
package replicacheck

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Account is what the comparison needs of the upstream account: the
// emulator satisfies it, and so can a client of its admin endpoints.
type Account interface {
	Objects(account, stream string) []json.RawMessage
	DeletedIDs(account, stream string) []string
}

// maxProblems bounds the differences Compare reports.
const maxProblems = 20

// Compare checks that the replica equals the account for the given
// streams: every current object has exactly one live row whose columns
// equal its top-level fields, no other live rows exist, and every deleted
// object is flagged (or was never replicated). It returns nil when they
// are equal, else an error listing the first differences.
func Compare(ctx context.Context, q dest.Querier, acct Account, account string, streams []string) error {
	var problems []string
	add := func(format string, args ...any) bool {
		problems = append(problems, fmt.Sprintf(format, args...))
		return len(problems) < maxProblems
	}
	for _, name := range streams {
		if !compareStream(ctx, q, acct, account, name, add) {
			break
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("replica differs from the account:\n  %s", strings.Join(problems, "\n  "))
}

// compareStream compares one stream; it returns false once add says to stop.
func compareStream(ctx context.Context, q dest.Querier, acct Account, account, name string, add func(string, ...any) bool) bool {
	s, _ := catalog.Lookup(name)
	want := acct.Objects(account, name)
	cols, rows, err := q.Query(ctx, fmt.Sprintf(`SELECT * FROM %q WHERE NOT _stripeline_deleted AND _stripeline_account = '%s'`, name, account))
	if err != nil {
		return add("%s: %v", name, err)
	}
	got := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = r[i]
		}
		id := fmt.Sprint(text(m["id"]))
		if _, dup := got[id]; dup {
			if !add("%s: duplicate row %s", name, id) {
				return false
			}
		}
		got[id] = m
	}
	rows = nil
	if len(got) != len(want) {
		if !add("%s: replica has %d live rows, account has %d objects", name, len(got), len(want)) {
			return false
		}
	}
	for _, obj := range want {
		id := gjson.GetBytes(obj, "id").Str
		row, ok := got[id]
		if !ok {
			if !add("%s: object %s missing from the replica", name, id) {
				return false
			}
			continue
		}
		for _, c := range s.Columns {
			v := gjson.GetBytes(obj, gjsonKey(c.Name))
			if c.Type == catalog.TypeJSON && sameRaw(row[c.Name], v.Raw) {
				continue // byte-identical JSON: skip the costly normalisation
			}
			wantV := expected(v, c.Type)
			gotV := text(row[c.Name])
			if wantV != gotV {
				if !add("%s %s field %s: replica %.120q, account %.120q", name, id, c.Name, gotV, wantV) {
					return false
				}
				break
			}
		}
	}
	for _, id := range acct.DeletedIDs(account, name) {
		_, rows, err := q.Query(ctx, fmt.Sprintf(`SELECT _stripeline_deleted FROM %q WHERE id = '%s'`, name, id))
		if err != nil {
			return add("%s: %v", name, err)
		}
		// A deleted object is either flagged or was never replicated
		// (deleted before the replica first saw it).
		if len(rows) > 1 || len(rows) == 1 && text(rows[0][0]) != "1" {
			if !add("%s: deleted object %s is not flagged deleted (rows %v)", name, id, rows) {
				return false
			}
		}
	}
	return true
}

// sameRaw reports whether a stored JSON value is byte-identical to raw.
func sameRaw(stored any, raw string) bool {
	switch x := stored.(type) {
	case string:
		return raw != "" && x == raw
	case []byte:
		return raw != "" && string(x) == raw
	}
	return false
}

// gjsonEscaper escapes gjson path syntax in a field name.
var gjsonEscaper = strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`)

func gjsonKey(name string) string { return gjsonEscaper.Replace(name) }

// expected renders an object's field the way the replica stores it.
func expected(v gjson.Result, typ catalog.Type) string {
	if !v.Exists() || v.Type == gjson.Null {
		return ""
	}
	switch typ {
	case catalog.TypeString:
		if v.IsObject() {
			return v.Get("id").Str
		}
		return v.String()
	case catalog.TypeBoolean:
		if v.Bool() {
			return "1"
		}
		return "0"
	case catalog.TypeJSON:
		return compact(v.Raw)
	default:
		return v.Raw
	}
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return compactIfJSON(string(x))
	case string:
		return compactIfJSON(x)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%v", x), ".0")
	default:
		return fmt.Sprint(x)
	}
}

func compactIfJSON(s string) string {
	if len(s) > 0 && (s[0] == '{' || s[0] == '[') && json.Valid([]byte(s)) {
		return compact(s)
	}
	return s
}

func compact(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
