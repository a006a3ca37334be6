package main

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
)

func TestDropShared(t *testing.T) {
	for _, tc := range []struct{ seg, param, want string }{
		{"subscription_items", "subscription", "items"},
		{"setup_attempts", "setup_intent", "attempts"},
		{"value_list_items", "value_list", "items"},
		{"credit_reversals", "financial_account", "credit_reversals"},
		{"tokens", "card", "tokens"},
		{"card", "card", "card"}, // never empty
	} {
		if got := dropShared(tc.seg, tc.param); got != tc.want {
			t.Errorf("dropShared(%q, %q) = %q, want %q", tc.seg, tc.param, got, tc.want)
		}
	}
}

// miniSpec is a tiny spec with a top-level list, a path child embedded in
// its parent, a query child and an alias.
const miniSpec = `{
  "info": {"version": "2099-01-01.test"},
  "components": {"schemas": {
    "widget": {"type": "object", "properties": {
      "object": {"type": "string", "enum": ["widget"]},
      "id": {"type": "string"},
      "created": {"type": "integer"},
      "owner": {"anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/widget"}], "nullable": true,
                "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/widget"}]}},
      "parts": {"type": "object", "properties": {
        "object": {"type": "string", "enum": ["list"]}, "has_more": {"type": "boolean"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/part"}}}},
      "ratio": {"type": "number"},
      "active": {"type": "boolean"},
      "tags": {"type": "array", "items": {"type": "string"}}
    }},
    "deleted_widget": {"type": "object", "properties": {"id": {"type": "string"}}},
    "part": {"type": "object", "properties": {"object": {"type": "string", "enum": ["part"]}, "id": {"type": "string"}}},
    "widget_note": {"type": "object", "properties": {"object": {"type": "string", "enum": ["widget_note"]}, "id": {"type": "string"}}}
  }},
  "paths": {
    "/v1/widgets": {"get": {"parameters": [
        {"name": "created", "in": "query", "schema": {"type": "integer"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "all"]}},
        {"name": "test_clock", "in": "query", "schema": {"type": "string"}}],
      "responses": {"200": {"content": {"application/json": {"schema": {"properties": {
        "object": {"enum": ["list"]}, "has_more": {"type": "boolean"},
        "data": {"items": {"$ref": "#/components/schemas/widget"}}}}}}}}}},
    "/v1/widgets/search": {"get": {"responses": {}}},
    "/v1/widgets/{widget}": {"delete": {"responses": {}}},
    "/v1/widgets/{widget}/parts": {"get": {"parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}], "responses": {"200": {"content": {"application/json": {"schema": {"properties": {
        "object": {"enum": ["list"]}, "has_more": {"type": "boolean"},
        "data": {"items": {"$ref": "#/components/schemas/part"}}}}}}}}}},
    "/v1/widget_notes": {"get": {"parameters": [{"name": "widget", "in": "query", "required": true, "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
      "responses": {"200": {"content": {"application/json": {"schema": {"properties": {
        "object": {"enum": ["list"]}, "has_more": {"type": "boolean"},
        "data": {"items": {"$ref": "#/components/schemas/widget_note"}}}}}}}}}},
    "/v1/widgets/{widget}/people": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"properties": {
        "object": {"enum": ["list"]}, "has_more": {"type": "boolean"},
        "data": {"items": {"$ref": "#/components/schemas/part"}}}}}}}}}}
  }
}`

const miniBeta = `{"components": {"schemas": {
  "widget.created": {"x-stripeEvent": {"type": "widget.created"}, "properties": {"object": {"$ref": "#/components/schemas/widget"}}},
  "widget.deleted": {"x-stripeEvent": {"type": "widget.deleted"}, "properties": {"object": {"$ref": "#/components/schemas/widget"}}}
}}}`

func TestBuildMiniSpec(t *testing.T) {
	var spec, beta rawSpec
	if err := json.Unmarshal([]byte(miniSpec), &spec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(miniBeta), &beta); err != nil {
		t.Fatal(err)
	}
	res, err := build(&spec, &beta)
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Stream{
		{
			Name: "widgets", Path: "/v1/widgets", Object: "widget", ObjectTypes: []string{"widget"},
			Created: true, HasCreatedField: true, Cursor: "created", Incremental: catalog.IncrementalEvents,
			EventTypes: []string{"widget.created", "widget.deleted"}, DeleteEvent: "widget.deleted",
			Deletable: true, Searchable: true, ListParams: map[string]string{"status": "all"}, TestClock: true,
			Columns: []catalog.Column{
				{Name: "id", Type: catalog.TypeString},
				{Name: "active", Type: catalog.TypeBoolean},
				{Name: "created", Type: catalog.TypeInteger},
				{Name: "object", Type: catalog.TypeString},
				{Name: "owner", Type: catalog.TypeString, Nullable: true, Expandable: true},
				{Name: "parts", Type: catalog.TypeJSON},
				{Name: "ratio", Type: catalog.TypeNumber},
				{Name: "tags", Type: catalog.TypeJSON},
			},
		},
		{
			Name: "widgets_notes", Path: "/v1/widget_notes", Object: "widget_note", ObjectTypes: []string{"widget_note"},
			Parent: "widgets", ParentParam: "widget", ParentInQuery: true, Incremental: catalog.IncrementalFull,
			Columns: []catalog.Column{{Name: "id", Type: catalog.TypeString}, {Name: "object", Type: catalog.TypeString}},
		},
		{
			Name: "widgets_parts", Path: "/v1/widgets/{widget}/parts", Object: "part", ObjectTypes: []string{"part"},
			Parent: "widgets", ParentParam: "widget", EmbeddedField: "parts", Incremental: catalog.IncrementalFull,
			Columns: []catalog.Column{{Name: "id", Type: catalog.TypeString}, {Name: "object", Type: catalog.TypeString}},
		},
	}
	if diff := cmp.Diff(want, res.streams); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
	if len(res.dropped) != 1 || res.dropped[0].Path != "/v1/widgets/{widget}/people" {
		t.Errorf("dropped %+v", res.dropped)
	}
}
