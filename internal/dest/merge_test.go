package dest_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

var mergeTable = dest.Table{Name: "t", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}, {Name: "j", Type: catalog.TypeJSON}}}

func row(id string, n int64, v int64) dest.Row {
	return dest.Row{ID: id, Values: []any{id, n, json.RawMessage(`{}`)}, Version: v}
}

func stub(id string, v int64) dest.Row { return dest.Row{ID: id, Deleted: true, Version: v} }

// TestMerge is Batch.Merge's rule, the one every destination applies.
func TestMerge(t *testing.T) {
	type out struct {
		ID      string
		N       any
		Deleted bool
		Version int64
	}
	for _, tc := range []struct {
		name      string
		onlyNewer bool
		rows      []dest.Row
		rowsOut   []out
		stubsOut  []out
	}{
		{"last wins", false, []dest.Row{row("a", 1, 0), row("b", 2, 0), row("a", 3, 0)}, []out{{"a", int64(3), false, 0}, {"b", int64(2), false, 0}}, nil},
		{"stub flags the row before it", false, []dest.Row{row("a", 1, 5), stub("a", 6)}, []out{{"a", int64(1), true, 6}}, nil},
		{"row replaces the stub before it", false, []dest.Row{stub("a", 6), row("a", 1, 5)}, []out{{"a", int64(1), false, 5}}, nil},
		{"stubs alone", false, []dest.Row{stub("a", 1), stub("a", 2), stub("b", 3)}, nil, []out{{"a", nil, true, 2}, {"b", nil, true, 3}}},
		{"newer: highest version, first of a tie", true, []dest.Row{row("a", 1, 3), row("a", 2, 7), row("a", 3, 5), row("a", 4, 7)}, []out{{"a", int64(2), false, 7}}, nil},
		{"newer: older stub ignored, newer stub flags", true, []dest.Row{row("a", 1, 7), stub("a", 6), row("b", 2, 1), stub("b", 9)}, []out{{"a", int64(1), false, 7}, {"b", int64(2), true, 9}}, nil},
		{"newer: stub beats an older row, a newer row beats it", true, []dest.Row{stub("a", 4), row("a", 1, 2), stub("b", 4), row("b", 2, 8)}, []out{{"b", int64(2), false, 8}}, []out{{"a", nil, true, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &dest.Batch{Table: mergeTable, Rows: tc.rows, OnlyNewer: tc.onlyNewer}
			m, err := b.Merge()
			if err != nil {
				t.Fatal(err)
			}
			conv := func(rs []dest.MergedRow) []out {
				var o []out
				for _, r := range rs {
					var n any
					if r.Values != nil {
						n = r.Values[1]
					}
					o = append(o, out{r.ID, n, r.Deleted, r.Version})
				}
				return o
			}
			if diff := cmp.Diff(tc.rowsOut, conv(m.Rows)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.stubsOut, conv(m.Stubs)); diff != "" {
				t.Errorf("stubs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMergeErrors: what fails a batch, naming the row.
func TestMergeErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onlyNewer bool
		row       dest.Row
		want      string
	}{
		{"no values, not deleted", false, dest.Row{ID: "a"}, "row a has no values"},
		{"wrong count", false, dest.Row{ID: "a", Values: []any{"a"}}, "row a has 1 values for 3 columns"},
		{"wrong type", false, dest.Row{ID: "a", Values: []any{"a", "one", nil}}, "row a column n"},
		{"invalid JSON", false, dest.Row{ID: "a", Values: []any{"a", int64(1), json.RawMessage(`{"x":`)}}, "row a column j: invalid JSON"},
		{"not a number", false, dest.Row{ID: "a", Values: []any{"a", math.NaN(), nil}}, "row a column n"},
		{"no id", false, dest.Row{Values: []any{nil, int64(1), nil}}, "row without an id"},
		{"conditional without a version", true, row("a", 1, 0), "row a has no version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&dest.Batch{Table: mergeTable, Rows: []dest.Row{tc.row}, OnlyNewer: tc.onlyNewer}).Merge()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Merge = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestMergeConverts: values of other Go types are converted to the
// columns' types; rows already of them keep their own slice.
func TestMergeConverts(t *testing.T) {
	own := row("a", 1, 0)
	other := dest.Row{ID: "b", Values: []any{"b", 2, "[1]"}}
	m, err := (&dest.Batch{Table: mergeTable, Rows: []dest.Row{own, other}}).Merge()
	if err != nil {
		t.Fatal(err)
	}
	if &m.Rows[0].Values[0] != &own.Values[0] {
		t.Error("a row of canonical values was copied")
	}
	if diff := cmp.Diff([]any{"b", int64(2), json.RawMessage(`"[1]"`)}, m.Rows[1].Values); diff != "" {
		t.Errorf("converted values (-want +got):\n%s", diff)
	}
	if other.Values[1] != 2 {
		t.Error("Merge changed the row it was given")
	}
}
