package emulator

import (
	"net/http"
	"strings"
)

// listEvents lists the last 30 days of events, filtered by created and type.
func (e *Emulator) listEvents(r *http.Request, tg *target, a *account) (response, *apiError) {
	q := r.URL.Query()
	if ae := e.checkQuery(q, "/v1/events"); ae != nil {
		return response{}, ae
	}
	la, ae := parseListArgs(q, true)
	if ae != nil {
		return response{}, ae
	}
	var types []string
	for k, v := range q {
		if k == "types" || strings.HasPrefix(k, "types[") {
			types = append(types, v...)
		}
	}
	if len(types) > 20 {
		return response{}, invalid("types", "You may pass at most 20 types.")
	}
	typ := q.Get("type")
	if typ != "" && len(types) > 0 {
		return response{}, invalid("types", "You may only specify one of these parameters: type, types.")
	}
	if typ != "" {
		types = []string{typ}
	}
	keep := func(rec *record) bool {
		if len(types) == 0 {
			return true
		}
		for _, t := range types {
			if matchType(t, rec.typ) {
				return true
			}
		}
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	lo := e.unix() - eventWindow
	la.gte = max(la.gte, lo)
	after, ae := cursor(a.events, la.after, "starting_after", "event")
	if ae != nil {
		return response{}, ae
	}
	before, ae := cursor(a.events, la.before, "ending_before", "event")
	if ae != nil {
		return response{}, ae
	}
	out, more := page(a.events.recs, pageQuery{limit: la.limit, after: after, before: before, gte: la.gte, lte: la.lte, keep: keep})
	return ok200(renderList("/v1/events", out, more)), nil
}

// matchType matches an event type against a pattern with * wildcards.
func matchType(pattern, typ string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == typ
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(typ, parts[0]) {
		return false
	}
	rest := typ[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(rest, p)
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return false
		}
		rest = rest[j+len(p):]
	}
	return true
}

func (e *Emulator) getEvent(tg *target, a *account) (response, *apiError) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rec, ok := a.events.byID[tg.id]
	if !ok || rec.created < e.unix()-eventWindow {
		return response{}, missing("event", tg.id, "id")
	}
	return ok200(rec.data), nil
}
