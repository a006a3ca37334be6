package main

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// twoWayDoc renders the part of docs/STREAMS.md that lists the fields
// two-way sync can push: per top-level stream with events, the object's
// fields its update request (POST <path>/{id}) takes. internal/twoway
// checks a configuration against the same schemas.
func twoWayDoc(spec *rawSpec, res *result) []byte {
	var b bytes.Buffer
	b.WriteString(tick(`
## Two-way fields

Two-way sync (~two_way:~ of a pipeline, ~sync --two-way STREAM=fields~; docs/OPERATIONS.md) can push
these fields from the database to Stripe: the object's top-level fields that its update request
takes. A stream needs events (so a run sees Stripe's side of a change); **create** says whether a row
inserted with a NULL id can create an object, **delete** whether a row marked ~_stripeline_delete~
can be deleted (others are refused with the reason).

| stream | update request | create | delete | two-way fields |
|---|---|---|---|---|
`))
	for _, s := range res.streams {
		if s.Parent != "" || len(s.EventTypes) == 0 || strings.Contains(s.Path, "{") {
			continue
		}
		path, body := itemBody(spec, s.Path, "post")
		if body == nil {
			continue
		}
		var fields []string
		for _, c := range s.Columns {
			if _, ok := body.Properties[c.Name]; ok && c.Name != "id" {
				fields = append(fields, c.Name)
			}
		}
		if len(fields) == 0 {
			continue
		}
		sort.Strings(fields)
		for i, f := range fields {
			fields[i] = "`" + f + "`"
		}
		create, del := "", ""
		if o := spec.Paths[s.Path]["post"]; o != nil && o.RequestBody != nil {
			create = "yes"
		}
		if p, _ := itemPath(spec, s.Path, "delete"); p != "" {
			del = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | `POST %s` | %s | %s | %s |\n", s.Name, path, create, del, strings.Join(fields, ", "))
	}
	return b.Bytes()
}

// itemPath is the spec's path of one object of a list (<path>/{param})
// that has the method.
func itemPath(spec *rawSpec, list, method string) (string, *rawOp) {
	for _, p := range sortedKeys(spec.Paths) {
		rest, ok := strings.CutPrefix(p, list+"/{")
		if !ok || !strings.HasSuffix(rest, "}") || strings.Contains(rest, "/") {
			continue
		}
		if o := spec.Paths[p][method]; o != nil {
			return p, o
		}
	}
	return "", nil
}

// itemBody is the form body schema of a method on one object of a list.
func itemBody(spec *rawSpec, list, method string) (string, *rawSchema) {
	p, o := itemPath(spec, list, method)
	if o == nil || o.RequestBody == nil {
		return "", nil
	}
	m, ok := o.RequestBody.Content["application/x-www-form-urlencoded"]
	if !ok || m.Schema == nil {
		return "", nil
	}
	return p, m.Schema
}
