package emulator

import (
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// target is what a request path names.
type target struct {
	kind     string // list, object, search, detach, account, accounts, events, event, empty, empty_object
	def      *streamDef
	cat      *catalog.Stream
	tmpl     string            // the path template, for the spec operation
	params   map[string]string // path parameters
	id       string
	endpoint string // method + template, the per-endpoint rate limit key
	object   string // the object type, for permissions
}

// matchPath matches a path against a template with {params}.
func matchPath(tmpl, path string) (map[string]string, bool) {
	ts := strings.Split(strings.Trim(tmpl, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	var params map[string]string
	for i, t := range ts {
		if strings.HasPrefix(t, "{") {
			if ps[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.Trim(t, "{}")] = ps[i]
			continue
		}
		if t != ps[i] {
			return nil, false
		}
	}
	return params, true
}

var catalogStreams = func() []catalog.Stream { return catalog.All() }

// route finds what a path names.
func (e *Emulator) route(method, path string) *target {
	fixed := map[string]*target{
		"/v1/account":  {kind: "account", object: "account"},
		"/v1/accounts": {kind: "accounts", object: "account"},
		"/v1/events":   {kind: "events", object: "event"},
	}
	if tg, ok := fixed[path]; ok {
		tg.tmpl, tg.endpoint = path, method+" "+path
		return tg
	}
	if p, ok := matchPath("/v1/events/{id}", path); ok {
		return &target{kind: "event", id: p["id"], tmpl: "/v1/events/{id}", endpoint: method + " /v1/events/{id}", object: "event"}
	}
	if p, ok := matchPath("/v1/accounts/{account}", path); ok {
		return &target{kind: "account", id: p["account"], tmpl: "/v1/accounts/{account}", endpoint: method + " /v1/accounts/{account}", object: "account"}
	}
	for _, d := range defs {
		obj := d.object
		if p, ok := matchPath(d.path, path); ok {
			return &target{kind: "list", def: d, params: p, tmpl: d.path, endpoint: method + " " + d.path, object: obj}
		}
		if d.search {
			if p, ok := matchPath(d.path+"/search", path); ok {
				return &target{kind: "search", def: d, params: p, tmpl: d.path + "/search", endpoint: method + " " + d.path + "/search", object: obj}
			}
		}
		if p, ok := matchPath(d.path+"/{id}", path); ok {
			return &target{kind: "object", def: d, params: p, id: p["id"], tmpl: d.path + "/{id}", endpoint: method + " " + d.path + "/{id}", object: obj}
		}
		if d.name == "payment_methods" {
			if p, ok := matchPath(d.path+"/{id}/detach", path); ok {
				return &target{kind: "detach", def: d, params: p, id: p["id"], tmpl: d.path + "/{id}/detach", endpoint: method + " " + d.path + "/{id}/detach", object: obj}
			}
		}
	}
	for i := range e.catStreams {
		s := &e.catStreams[i]
		obj := s.Object
		if len(s.ObjectTypes) > 0 {
			obj = s.ObjectTypes[0]
		}
		if p, ok := matchPath(s.Path, path); ok {
			return &target{kind: "empty", cat: s, params: p, tmpl: s.Path, endpoint: method + " " + s.Path, object: obj}
		}
		if p, ok := matchPath(s.Path+"/{id}", path); ok {
			return &target{kind: "empty_object", cat: s, params: p, id: p["id"], tmpl: s.Path + "/{id}", endpoint: method + " " + s.Path + "/{id}", object: obj}
		}
	}
	// Anything else the spec knows answers 404s by template; unknown URLs
	// count under one key.
	return &target{kind: "unknown", endpoint: method + " (unrecognized)"}
}
