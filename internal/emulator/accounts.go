package emulator

import "net/http"

func (e *Emulator) getAccount(a *account, tg *target) (response, *apiError) {
	if tg.id != "" {
		e.mu.RLock()
		b, found := e.byAcct[tg.id]
		found = found && !e.revoked[tg.id]
		e.mu.RUnlock()
		if !found || (a != e.accounts[0] && b != a) {
			return response{}, missing("account", tg.id, "account")
		}
		a = b
	}
	return ok200(e.accountJSON(a)), nil
}

func (e *Emulator) accountJSON(a *account) []byte {
	t := e.tpls.component("account")
	main := a == e.accounts[0]
	over := fields{{"id", a.id}, {"object", "account"}, {"email", a.email}, {"country", a.country}, {"default_currency", "usd"}, {"created", a.created},
		{"charges_enabled", true}, {"payouts_enabled", true}, {"details_submitted", true}, {"type", map[bool]string{true: "standard", false: "custom"}[main]},
		{"business_type", "company"}, {"metadata", map[string]string{}},
		{"settings", sub{e.tpls.nested("account", "settings"), fields{{"dashboard", sub{e.tpls.nested("account", "settings", "dashboard"), fields{{"display_name", a.name}, {"timezone", "Etc/UTC"}}}}}}}}
	return t.render(nil, over)
}

func (e *Emulator) listAccounts(r *http.Request, tg *target, a *account) (response, *apiError) {
	q := r.URL.Query()
	if ae := e.checkQuery(q, "/v1/accounts"); ae != nil {
		return response{}, ae
	}
	la, ae := parseListArgs(q, true)
	if ae != nil {
		return response{}, ae
	}
	t := newTable(nil)
	if a == e.accounts[0] {
		e.mu.RLock()
		defer e.mu.RUnlock()
		for _, c := range e.accounts[1:] {
			if e.revoked[c.id] {
				continue
			}
			t.byID[c.id] = &record{id: c.id, created: c.created, data: e.accountJSON(c)}
			t.recs = append(t.recs, t.byID[c.id])
		}
	}
	t.sortAll()
	after, ae := cursor(t, la.after, "starting_after", "account")
	if ae != nil {
		return response{}, ae
	}
	before, ae := cursor(t, la.before, "ending_before", "account")
	if ae != nil {
		return response{}, ae
	}
	out, more := page(t.recs, pageQuery{limit: la.limit, after: after, before: before, gte: la.gte, lte: la.lte})
	return ok200(renderList("/v1/accounts", out, more)), nil
}
