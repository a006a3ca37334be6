package emulator

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// queryParams splits a query into base parameter names ("created[gte]" →
// "created") and rejects those the operation does not take.
func (e *Emulator) checkQuery(q url.Values, tmpl string, extra ...string) *apiError {
	op := e.sp.operation("GET", tmpl)
	allowed := map[string]bool{}
	for _, x := range extra {
		allowed[x] = true
	}
	if op != nil {
		for k := range op.Query {
			allowed[k] = true
		}
	}
	var names []string
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		base := k
		if i := strings.IndexByte(k, '['); i > 0 {
			base = k[:i]
		}
		if !allowed[base] {
			return unknownParam(k)
		}
	}
	return nil
}

// listArgs are the parsed paging arguments of a list request.
type listArgs struct {
	limit         int
	after, before string
	gte, lte      int64
}

func parseListArgs(q url.Values, createdAllowed bool) (listArgs, *apiError) {
	la := listArgs{limit: 10, gte: -1 << 62, lte: 1 << 62}
	if v, has := q["limit"]; has {
		n, err := strconv.Atoi(v[0])
		if err != nil {
			return la, invalid("limit", "Invalid integer: "+v[0])
		}
		if n < 1 {
			return la, invalid("limit", "This value must be greater than or equal to 1.")
		}
		if n > 100 {
			return la, invalid("limit", fmt.Sprintf("This value must be less than or equal to 100 (it currently is %d).", n))
		}
		la.limit = n
	}
	la.after, la.before = q.Get("starting_after"), q.Get("ending_before")
	if la.after != "" && la.before != "" {
		return la, invalid("ending_before", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	if createdAllowed {
		for k, v := range q {
			if k != "created" && !strings.HasPrefix(k, "created[") {
				continue
			}
			n, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				return la, invalid(k, "Invalid integer: "+v[0])
			}
			switch k {
			case "created":
				la.gte, la.lte = max(la.gte, n), min(la.lte, n)
			case "created[gt]":
				la.gte = max(la.gte, n+1)
			case "created[gte]":
				la.gte = max(la.gte, n)
			case "created[lt]":
				la.lte = min(la.lte, n-1)
			case "created[lte]":
				la.lte = min(la.lte, n)
			default:
				return la, unknownParam(k)
			}
		}
	}
	return la, nil
}

// cursor finds a paging cursor's record (current or deleted).
func cursor(t *table, id, param string, object string) (*record, *apiError) {
	if id == "" {
		return nil, nil
	}
	if r, ok := t.byID[id]; ok {
		return r, nil
	}
	if r, ok := t.gone[id]; ok {
		return r, nil
	}
	ae := missing(object, id, param)
	ae.status = 400
	return nil, ae
}

func renderList(url string, recs []*record, more bool) []byte {
	size := 64
	for _, r := range recs {
		size += len(r.data) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"object":"list","data":[`...)
	for i, r := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r.data...)
	}
	b = append(b, `],"has_more":`...)
	b = strconv.AppendBool(b, more)
	b = append(b, `,"url":`...)
	b = appendString(b, url)
	return append(b, '}')
}

func (e *Emulator) list(r *http.Request, tg *target, a *account) (response, *apiError) {
	d := tg.def
	q := r.URL.Query()
	if ae := e.checkQuery(q, d.path); ae != nil {
		return response{}, ae
	}
	createdOK := d.created
	if op := e.sp.operation("GET", d.path); op != nil {
		_, createdOK = op.Query["created"]
	}
	la, ae := parseListArgs(q, createdOK)
	if ae != nil {
		return response{}, ae
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := a.tables[d.name]
	recs := t.recs
	url := r.URL.Path
	if d.parent != "" {
		pid, ae := parentID(q, tg, d.parentParam, d.parentInQuery)
		if ae != nil {
			return response{}, ae
		}
		pt := a.tables[d.parent]
		if _, ok := pt.byID[pid]; !ok {
			return response{}, missing(objectName(pt.def.object), pid, d.parentParam)
		}
		recs = t.kids[pid]
	}
	if d.unpaginated {
		// One request returns every object (the list takes no limit).
		la.limit = max(1, len(recs))
	}
	after, ae := cursor(t, la.after, "starting_after", objectName(d.object))
	if ae != nil {
		return response{}, ae
	}
	before, ae := cursor(t, la.before, "ending_before", objectName(d.object))
	if ae != nil {
		return response{}, ae
	}
	keep := e.listFilter(d, q)
	out, more := page(recs, pageQuery{limit: la.limit, after: after, before: before, gte: la.gte, lte: la.lte, keep: keep})
	out = e.expandIncludable(a, d, q, out)
	return ok200(renderList(url, out, more)), nil
}

// listFilter applies the filters a list takes: hidden objects (canceled
// subscriptions, test clocks) and equality on top-level fields.
func (e *Emulator) listFilter(d *streamDef, q url.Values) func(*record) bool {
	var checks []func(*record) bool
	status := q.Get("status")
	if d.name == "subscriptions" {
		switch status {
		case "all":
		case "":
			checks = append(checks, func(r *record) bool { return !r.hidden })
		default:
			checks = append(checks, func(r *record) bool { return gjson.GetBytes(r.data, "status").Str == status })
		}
	}
	if d.testClock {
		clock := q.Get("test_clock")
		checks = append(checks, func(r *record) bool { return r.clock == clock })
	}
	for k, v := range q {
		switch k {
		case "limit", "starting_after", "ending_before", "test_clock", "expand", "expand[]", d.parentParam:
			continue
		case "status":
			if d.name == "subscriptions" || v[0] == "all" {
				continue // status=all lists every status (tax registrations)
			}
		}
		if strings.HasPrefix(k, "created") || strings.Contains(k, "[") {
			continue
		}
		want := v[0]
		path := k
		if d.name == "invoices" && k == "subscription" {
			path = "parent.subscription_details.subscription"
		}
		checks = append(checks, func(r *record) bool {
			res := gjson.GetBytes(r.data, path)
			if !res.Exists() {
				return true
			}
			if res.IsObject() {
				return res.Get("id").String() == want
			}
			return res.String() == want
		})
	}
	if len(checks) == 0 {
		return nil
	}
	return func(r *record) bool {
		for _, c := range checks {
			if !c(r) {
				return false
			}
		}
		return true
	}
}

func (e *Emulator) retrieve(r *http.Request, tg *target, a *account) (response, *apiError) {
	if ae := e.checkQuery(r.URL.Query(), tg.tmpl, "expand"); ae != nil {
		return response{}, ae
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := a.tables[tg.def.name]
	if rec, ok := t.byID[tg.id]; ok {
		return ok200(rec.data), nil
	}
	if rec, ok := t.gone[tg.id]; ok && tg.def.deletable && tg.def.name != "payment_methods" {
		return ok200(appendValue(nil, fields{{"id", rec.id}, {"object", objectName(tg.def.object)}, {"deleted", true}})), nil
	} else if ok {
		return ok200(rec.data), nil
	}
	return response{}, missing(objectName(tg.def.object), tg.id, "id")
}

func (e *Emulator) emptyList(r *http.Request, tg *target, a *account) (response, *apiError) {
	s := tg.cat
	q := r.URL.Query()
	if ae := e.checkQuery(q, s.Path); ae != nil {
		return response{}, ae
	}
	if _, ae := parseListArgs(q, s.Created); ae != nil {
		return response{}, ae
	}
	if s.Parent != "" {
		pid, ae := parentID(q, tg, s.ParentParam, s.ParentInQuery)
		if ae != nil {
			return response{}, ae
		}
		e.mu.RLock()
		_, found := a.tables[e.streamName(s.Parent)]
		exists := false
		if found {
			_, exists = a.tables[e.streamName(s.Parent)].byID[pid]
		}
		e.mu.RUnlock()
		if !exists {
			return response{}, missing(s.ParentParam, pid, s.ParentParam)
		}
	}
	return ok200(renderList(r.URL.Path, nil, false)), nil
}

// parentID is the parent a child list is asked for: a path parameter, or a
// query parameter it may not lack.
func parentID(q url.Values, tg *target, param string, inQuery bool) (string, *apiError) {
	if !inQuery {
		return tg.params[param], nil
	}
	pid := q.Get(param)
	if pid == "" {
		return "", invalid(param, "Missing required param: "+param+".")
	}
	return pid, nil
}
