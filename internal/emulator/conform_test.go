package emulator

import (
	"strings"
	"testing"
)

// objectComponent maps an object's "object" value to its component.
func objectComponent(obj string) string {
	for _, d := range defs {
		if d.object == obj || objectName(d.object) == obj || strings.ReplaceAll(d.object, ".", "_") == obj {
			return d.object
		}
	}
	return obj
}

func TestListsConformToTheSpec(t *testing.T) {
	e := sharedEmulator(t)
	vd := validator{sp: e.sp}
	for _, d := range defs {
		t.Run(d.name, func(t *testing.T) {
			op := e.sp.operation("GET", d.path)
			if op == nil || op.Response == nil {
				t.Fatalf("no list operation for %s", d.path)
			}
			lists := listings(e, "", d)
			if len(lists) > 40 {
				lists = lists[:40]
			}
			n := 0
			for _, u := range lists {
				after := ""
				for pages := 0; pages < 30; pages++ {
					q := withQuery(u, "limit", "100")
					if unpaginatedURL(u) {
						q = u
					}
					if after != "" {
						q = withQuery(q, "starting_after", after)
					}
					r := mustOK(t, call(e, "GET", q, nil))
					if errs := vd.validateJSON(r.body, op.Response, d.name); len(errs) > 0 {
						t.Fatalf("%s: %d violations, first: %v", q, len(errs), errs[:min(5, len(errs))])
					}
					n += len(r.get("data").Array())
					if !r.get("has_more").Bool() {
						break
					}
					p := ids(r)
					after = p[len(p)-1]
				}
			}
			if n == 0 {
				t.Fatal("validated nothing")
			}
		})
	}
}

func TestEventsConformToTheSpec(t *testing.T) {
	e := sharedEmulator(t)
	vd := validator{sp: e.sp}
	op := e.sp.operation("GET", "/v1/events")
	var r reply
	after := ""
	types := map[string]bool{}
	for pages := 0; pages < 60; pages++ {
		q := "/v1/events?limit=100"
		if after != "" {
			q += "&starting_after=" + after
		}
		r = mustOK(t, call(e, "GET", q, nil))
		if errs := vd.validateJSON(r.body, op.Response, "events"); len(errs) > 0 {
			t.Fatalf("%d violations, first: %v", len(errs), errs[:min(5, len(errs))])
		}
		for _, ev := range r.get("data").Array() {
			obj := ev.Get("data.object")
			types[ev.Get("type").Str] = true
			if errs := vd.validateJSON([]byte(obj.Raw), e.sp.component(objectComponent(obj.Get("object").Str)), ev.Get("type").Str); len(errs) > 0 {
				t.Fatalf("event %s %s data.object: %v", ev.Get("id").Str, obj.Get("object").Str, errs[:min(5, len(errs))])
			}
		}
		if !r.get("has_more").Bool() {
			break
		}
		p := ids(r)
		after = p[len(p)-1]
	}
	if len(types) < 10 {
		t.Fatalf("only event types %v", types)
	}
}

func TestAccountsConformToTheSpec(t *testing.T) {
	e := sharedEmulator(t)
	vd := validator{sp: e.sp}
	r := mustOK(t, call(e, "GET", "/v1/account", nil))
	if errs := vd.validateJSON(r.body, e.sp.component("account"), "account"); len(errs) > 0 {
		t.Fatal(errs)
	}
	if r.get("settings.dashboard.display_name").Str == "" || !strings.HasPrefix(r.get("id").Str, "acct_") {
		t.Fatalf("account %s", r.body)
	}
	l := mustOK(t, call(e, "GET", "/v1/accounts", nil))
	if got := len(l.get("data").Array()); got != 2 {
		t.Fatalf("%d connected accounts listed", got)
	}
	if errs := vd.validateJSON(l.body, e.sp.operation("GET", "/v1/accounts").Response, "accounts"); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestEmptyCatalogListsConformToTheSpec(t *testing.T) {
	e := sharedEmulator(t)
	vd := validator{sp: e.sp}
	if len(e.catStreams) == 0 {
		t.Skip("the catalog lists no other streams yet")
	}
	for i, s := range e.catStreams {
		if i%5 != 0 || s.Parent != "" {
			continue
		}
		op := e.sp.operation("GET", s.Path)
		q := s.Path
		if len(s.ListParams) > 0 || strings.Contains(q, "{") {
			continue
		}
		r := call(e, "GET", q, nil)
		if r.code != 200 {
			continue // lists that need a parameter the catalog calls a parent
		}
		if op != nil && op.Response != nil {
			if errs := vd.validateJSON(r.body, op.Response, s.Name); len(errs) > 0 {
				t.Errorf("%s: %v", s.Name, errs)
			}
		}
	}
}
