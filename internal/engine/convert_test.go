package engine_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
)

func TestConverter(t *testing.T) {
	t.Parallel()
	s := catalog.Stream{Name: "widgets", Columns: []catalog.Column{
		{Name: "id", Type: catalog.TypeString},
		{Name: "amount", Type: catalog.TypeInteger},
		{Name: "price", Type: catalog.TypeString},
		{Name: "metadata", Type: catalog.TypeJSON},
	}}
	obj := json.RawMessage(`{"id":"w_1","amount":"12","price":{"id":"price_1","object":"price"},"metadata":{"a":"b"},"brand_new":true}`)
	for _, tc := range []struct {
		fields []string
		cols   []dest.Column
		values []any
	}{
		{nil, []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "amount", Type: catalog.TypeInteger}, {Name: "price", Type: catalog.TypeString}, {Name: "metadata", Type: catalog.TypeJSON}},
			[]any{"w_1", int64(12), "price_1", json.RawMessage(`{"a":"b"}`)}},
		{[]string{"price"}, []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "price", Type: catalog.TypeString}},
			[]any{"w_1", "price_1"}},
	} {
		c := engine.NewConverter(s, tc.fields)
		if diff := cmp.Diff(tc.cols, c.Columns()); diff != "" {
			t.Errorf("fields %v: columns (-want +got):\n%s", tc.fields, diff)
		}
		row, err := c.Row(obj, "")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.values, row.Values); diff != "" || row.ID != "w_1" {
			t.Errorf("fields %v: row %s (-want +got):\n%s", tc.fields, row.ID, diff)
		}
		if len(c.Columns()) != len(tc.cols) {
			t.Errorf("fields %v: a field the catalog does not list became a column: %v", tc.fields, c.Columns())
		}
	}
	if _, err := engine.NewConverter(s, nil).Row(json.RawMessage(`{"amount":1}`), ""); err == nil {
		t.Error("an object without an id converted")
	}
}
