// Package enginetest compares a replica with the emulator's account: every
// current object of a stream has exactly one live row whose columns equal the
// object's top-level fields, and every deleted object is flagged.
package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
)

// SeededStreams are the streams the emulator fills in the main account.
func SeededStreams(t testing.TB, emu *emulator.Emulator, account string) []string {
	t.Helper()
	var out []string
	for name, n := range emu.Counts(account) {
		// The replica keeps the event log's history; the account forgets
		// events after 30 days, so the two are not meant to be equal.
		if n > 0 && name != "events" {
			if _, ok := catalog.Lookup(name); ok {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("emulator seeded only %v", out)
	}
	return out
}

// AssertReplicaEqualsAccount compares every current object of every seeded
// stream with its row, top-level field by field, and checks deletions.
func AssertReplicaEqualsAccount(t testing.TB, q dest.Querier, emu *emulator.Emulator, account string, streams []string) {
	t.Helper()
	for _, name := range streams {
		s, _ := catalog.Lookup(name)
		want := emu.Objects(account, name)
		cols, rows, err := q.Query(context.Background(), fmt.Sprintf(`SELECT * FROM %q WHERE _stripeline_deleted = 0 AND _stripeline_account = '%s'`, name, account))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[string]map[string]any{}
		for _, r := range rows {
			m := map[string]any{}
			for i, c := range cols {
				m[c] = r[i]
			}
			id := fmt.Sprint(text(m["id"]))
			if _, dup := got[id]; dup {
				t.Errorf("%s: duplicate row %s", name, id)
			}
			got[id] = m
		}
		if len(got) != len(want) {
			t.Errorf("%s: replica has %d live rows, account has %d objects", name, len(got), len(want))
		}
		for _, obj := range want {
			id := gjson.GetBytes(obj, "id").Str
			row, ok := got[id]
			if !ok {
				t.Errorf("%s: object %s missing from the replica", name, id)
				continue
			}
			for _, c := range s.Columns {
				wantV := expected(gjson.GetBytes(obj, gjsonKey(c.Name)), c.Type)
				gotV := text(row[c.Name])
				if wantV != gotV {
					t.Errorf("%s %s field %s: replica %.120q, account %.120q", name, id, c.Name, gotV, wantV)
					break
				}
			}
		}
		for _, id := range emu.DeletedIDs(account, name) {
			_, rows, err := q.Query(context.Background(), fmt.Sprintf(`SELECT _stripeline_deleted FROM %q WHERE id = '%s'`, name, id))
			if err != nil {
				t.Fatal(err)
			}
			// A deleted object is either flagged or was never replicated
			// (deleted before the replica first saw it).
			if len(rows) > 1 || len(rows) == 1 && text(rows[0][0]) != "1" {
				t.Errorf("%s: deleted object %s is not flagged deleted (rows %v)", name, id, rows)
			}
		}
	}
}

func gjsonKey(name string) string {
	r := strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`)
	return r.Replace(name)
}

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
