package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// migrations records Migrate calls.
type migrations struct {
	dest.Destination
	tables []dest.Table
}

func (m *migrations) Migrate(_ context.Context, t dest.Table) error {
	m.tables = append(m.tables, t)
	return nil
}

func TestRowConversionAndSchemaEvolution(t *testing.T) {
	s := catalog.Stream{Name: "widgets", Columns: []catalog.Column{
		{Name: "id", Type: catalog.TypeString},
		{Name: "amount", Type: catalog.TypeInteger},
		{Name: "paid", Type: catalog.TypeBoolean},
		{Name: "rate", Type: catalog.TypeNumber},
		{Name: "customer", Type: catalog.TypeString, Expandable: true},
		{Name: "metadata", Type: catalog.TypeJSON},
		{Name: "order", Type: catalog.TypeString},
	}}
	m := &migrations{}
	tb := newTable(s, nil, m)
	obj := json.RawMessage(`{"id":"w_1","amount":9007199254740993,"paid":true,"rate":1.5,"customer":{"id":"cus_1","object":"customer"},"metadata":{"k":"ü🚀"},"order":null,"brand_new":{"a":1},"count":3}`)
	row, err := tb.row(context.Background(), obj, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.tables) != 1 {
		t.Fatalf("new fields migrated %d times, want once", len(m.tables))
	}
	got := map[string]any{}
	for i, c := range tb.shape().Columns {
		got[c.Name] = row.Values[i]
	}
	want := map[string]any{
		"id": "w_1", "amount": int64(9007199254740993), "paid": true, "rate": 1.5, "customer": "cus_1",
		"metadata": json.RawMessage(`{"k":"ü🚀"}`), "order": nil, "brand_new": json.RawMessage(`{"a":1}`), "count": int64(3),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("row (-want +got):\n%s", diff)
	}
	types := map[string]catalog.Type{}
	for _, c := range m.tables[0].Columns {
		types[c.Name] = c.Type
	}
	if types["brand_new"] != catalog.TypeJSON || types["count"] != catalog.TypeInteger {
		t.Fatalf("evolved column types %v", types)
	}
	if _, err := tb.row(context.Background(), json.RawMessage(`{"amount":1}`), "", false); err == nil {
		t.Fatal("an object without an id became a row")
	}
}

func TestFieldSelectionKeepsID(t *testing.T) {
	s := catalog.Stream{Name: "widgets", Parent: "gadgets", Columns: []catalog.Column{
		{Name: "id", Type: catalog.TypeString}, {Name: "a", Type: catalog.TypeString}, {Name: "b", Type: catalog.TypeString},
	}}
	tb := newTable(s, []string{"a"}, &migrations{})
	var names []string
	for _, c := range tb.shape().Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"id", "a", ParentColumn}, names); diff != "" {
		t.Fatalf("columns (-want +got):\n%s", diff)
	}
	row, err := tb.row(context.Background(), json.RawMessage(`{"id":"x","a":"1","b":"2","c":3}`), "g_1", false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{"x", "1", "g_1"}, row.Values); diff != "" {
		t.Fatalf("values (-want +got):\n%s", diff)
	}
}

func TestWithoutField(t *testing.T) {
	for _, tc := range []struct{ in, field, want string }{
		{`{"id":"a","tax_ids":{"data":[1,{"x":2}]},"b":1}`, "tax_ids", `{"id":"a","b":1}`},
		{`{"id":"a","tax_ids":{"data":[]}}`, "tax_ids", `{"id":"a"}`},
		{`{"tax_ids":null, "id":"a"}`, "tax_ids", `{ "id":"a"}`},
		{`{"tax_ids":[]}`, "tax_ids", `{}`},
		{`{"id":"a"}`, "tax_ids", `{"id":"a"}`},
		{`{"id":"a", "tax_ids" : [1] }`, "tax_ids", `{"id":"a" }`},
	} {
		got := string(withoutField([]byte(tc.in), tc.field))
		if got != tc.want || !json.Valid([]byte(got)) {
			t.Errorf("withoutField(%s, %s) = %s, want %s", tc.in, tc.field, got, tc.want)
		}
	}
}
