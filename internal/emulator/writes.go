package emulator

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

// parseForm turns bracket-notation form values into nested maps:
// metadata[k]=v → {"metadata": {"k": "v"}}, items[0][price]=p →
// {"items": {"0": {"price": "p"}}}, expand[]=x → {"expand": {"0": "x"}}.
func parseForm(form url.Values) (map[string]any, *apiError) {
	out := map[string]any{}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for n, v := range form[k] {
			path, ok := splitKey(k)
			if !ok {
				return nil, invalid(k, "Invalid parameter name: "+k)
			}
			cur := out
			for i, p := range path {
				if p == "" {
					p = strconv.Itoa(len(cur)) // key[]=v appends
				}
				if i == len(path)-1 {
					cur[p] = v
					break
				}
				next, isMap := cur[p].(map[string]any)
				if !isMap {
					if str, isStr := cur[p].(string); isStr && str != "" {
						return nil, invalid(k, "Invalid hash: "+k)
					}
					next = map[string]any{}
					cur[p] = next
				}
				cur = next
			}
			_ = n
		}
	}
	return out, nil
}

func splitKey(k string) ([]string, bool) {
	i := strings.IndexByte(k, '[')
	if i < 0 {
		return []string{k}, true
	}
	out := []string{k[:i]}
	rest := k[i:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return nil, false
		}
		out = append(out, rest[1:j])
		rest = rest[j+1:]
	}
	return out, true
}

// checkBody rejects parameters the operation does not take, naming them.
func (e *Emulator) checkBody(op *catalog.Operation, params map[string]any) *apiError {
	if op == nil || op.Body == nil {
		if len(params) > 0 {
			for k := range params {
				return unknownParam(k)
			}
		}
		return nil
	}
	return e.checkParams(op.Body, params, "")
}

func (e *Emulator) checkParams(s *catalog.Schema, params map[string]any, prefix string) *apiError {
	s = e.sp.resolve(s)
	if s == nil || (len(s.Properties) == 0 && len(s.AnyOf) == 0) {
		return nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if prefix != "" {
			name = prefix + "[" + k + "]"
		}
		ps, ok := s.Properties[k]
		if !ok {
			if len(s.AnyOf) > 0 || s.AdditionalProperties != nil {
				continue
			}
			return unknownParam(name)
		}
		if sub, isMap := params[k].(map[string]any); isMap {
			ps = e.sp.resolve(ps)
			obj := ps
			if ps != nil && len(ps.AnyOf) > 0 {
				obj = nil
				for _, v := range ps.AnyOf {
					v = e.sp.resolve(v)
					if v != nil && v.Type == "object" {
						obj = v
						break
					}
				}
			}
			if obj != nil && obj.Type == "array" {
				for _, item := range sub {
					if im, ok := item.(map[string]any); ok {
						if ae := e.checkParams(obj.Items, im, name); ae != nil {
							return ae
						}
					}
				}
				continue
			}
			if obj != nil && len(obj.Properties) > 0 {
				if ae := e.checkParams(obj, sub, name); ae != nil {
					return ae
				}
			}
		}
	}
	return nil
}

func (e *Emulator) writeParams(r *http.Request, method, tmpl string) (map[string]any, *apiError) {
	params, ae := parseForm(r.PostForm)
	if ae != nil {
		return nil, ae
	}
	if ae := e.checkBody(e.sp.operation(method, tmpl), params); ae != nil {
		return nil, ae
	}
	delete(params, "expand")
	return params, nil
}

// alsoRequired are create parameters the spec leaves optional (for
// alternatives the emulator does not model) but Stripe needs.
var alsoRequired = map[string][]string{
	"subscriptions": {"customer", "items"},
	"invoiceitems":  {"customer"},
	"prices":        {"currency"},
	"invoices":      {"customer"},
}

// create makes a new object from POST /v1/<list>.
func (e *Emulator) create(r *http.Request, tg *target, a *account) (response, *apiError) {
	d := tg.def
	op := e.sp.operation("POST", d.path)
	if op == nil || d.parent != "" {
		return response{}, &apiError{status: 404, typ: "invalid_request_error", msg: fmt.Sprintf("Unrecognized request URL (POST: %s).", r.URL.Path)}
	}
	params, ae := e.writeParams(r, "POST", d.path)
	if ae != nil {
		return response{}, ae
	}
	if ae := checkEmail(d, params); ae != nil {
		return response{}, ae
	}
	if u, ok := params["url"].(string); d.name == "webhook_endpoints" && ok && !loopbackURL(u) {
		return response{}, invalid("url", "The emulator delivers webhooks to loopback addresses only (http://127.0.0.1:PORT/…).")
	}
	for _, req := range append(append([]string(nil), op.Body.Required...), alsoRequired[d.name]...) {
		if _, ok := params[req]; !ok {
			return response{}, invalid(req, "Missing required param: "+req+".")
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.unix()
	id, ae := e.newObjectID(a, d, params)
	if ae != nil {
		return response{}, ae
	}
	schema := e.sp.component(d.object)
	m, ae := e.objectParams(schema, params)
	if ae != nil {
		return response{}, ae
	}
	if ae := references(a, params); ae != nil {
		return response{}, ae
	}
	over := e.createdFields(d, schema, params, m, id, now)
	if d.name == "subscriptions" {
		if ae := e.addSubscriptionItems(a, params, id, now, &over); ae != nil {
			return response{}, ae
		}
	}
	if d.name == "invoices" {
		over.set("lines", raw(e.embeddedList(a, defByName["invoices_lines"], id)))
		over.set("status", "draft")
	}
	if _, ok := over.get("metadata"); !ok {
		over = append(over, field{"metadata", map[string]string{}})
	}
	if d.name == "webhook_endpoints" {
		over.set("status", "enabled")
		over.set("api_version", catalog.SpecVersion())
	}
	data := e.tpls.component(d.object).render(nil, over)
	if d.name == "webhook_endpoints" {
		data = withoutField(data, "secret") // shown once, in the create response
	}
	rec := &record{id: id, created: now, data: data}
	if c, ok := params["test_clock"].(string); ok {
		rec.clock = c
	}
	a.tables[d.name].add(rec)
	e.emit(a, d.evCreated, data, nil)
	if d.name == "webhook_endpoints" {
		// The signing secret comes only in the create response.
		connect := fmt.Sprint(params["connect"]) == "true"
		return ok200(setField(data, "secret", appendString(nil, e.hookSecret(id, connect)))), nil
	}
	return ok200(data), nil
}

// newObjectID draws the new object's id; a coupon may bring its own.
func (e *Emulator) newObjectID(a *account, d *streamDef, params map[string]any) (string, *apiError) {
	id := a.newID(d.prefix, e.rnd.Uint64)
	if d.prefix != "" {
		return id, nil
	}
	id = "CPN" + id[7:]
	if v, ok := params["id"].(string); ok && v != "" {
		if _, dup := a.tables[d.name].byID[v]; dup {
			return "", &apiError{status: 400, typ: "invalid_request_error", code: "resource_already_exists", param: "id", msg: "Coupon already exists."}
		}
		id = v
	}
	return id, nil
}

// objectParams are the parameters that are fields of the object, coerced
// to the fields' types; metadata keeps its non-empty values as strings.
func (e *Emulator) objectParams(schema *catalog.Schema, params map[string]any) (map[string]any, *apiError) {
	m := map[string]any{}
	for k, v := range params {
		if k == "id" {
			continue
		}
		ps, inObject := schema.Properties[k]
		if !inObject {
			continue
		}
		if k == "metadata" {
			md := map[string]any{}
			if mv, ok := v.(map[string]any); ok {
				for mk, x := range mv {
					if s := fmt.Sprint(x); s != "" {
						md[mk] = s
					}
				}
			}
			m[k] = md
			continue
		}
		c, err := e.coerce(ps, v, nil)
		if err != nil {
			return nil, invalid(k, err.Error())
		}
		m[k] = c
	}
	return m, nil
}

// references answers 404 when a parameter names an object that does not exist.
func references(a *account, params map[string]any) *apiError {
	for _, ref := range []struct{ param, stream string }{{"customer", "customers"}, {"product", "products"}, {"coupon", "coupons"}, {"price", "prices"}} {
		if v, ok := params[ref.param].(string); ok && v != "" {
			if _, exists := a.tables[ref.stream].byID[v]; !exists {
				return missing(strings.TrimSuffix(ref.stream, "s"), v, ref.param)
			}
		}
	}
	return nil
}

// createdFields are the new object's fields besides the template's
// defaults: its id and time, what Stripe sets on creation, then the
// parameters m.
func (e *Emulator) createdFields(d *streamDef, schema *catalog.Schema, params, m map[string]any, id string, now int64) fields {
	over := fields{{"id", id}, {"created", now}}
	if d.name == "invoiceitems" {
		over = fields{{"id", id}, {"date", now}}
	}
	if d.name == "products" {
		over = append(over, field{"updated", now}, field{"active", true})
	}
	if d.name == "prices" {
		over = append(over, field{"active", true})
		if p, ok := params["recurring"].(map[string]any); ok {
			over = append(over, field{"type", "recurring"}, field{"recurring", sub{e.tpls.nested("price", "recurring"), fields{{"interval", fmt.Sprint(p["interval"])}, {"interval_count", 1}, {"usage_type", "licensed"}}}})
			delete(m, "recurring")
		} else {
			over = append(over, field{"type", "one_time"})
		}
	}
	for _, k := range []string{"valid", "active"} {
		if _, has := schema.Properties[k]; has {
			over.set(k, true)
		}
	}
	if d.name == "subscriptions" {
		over = append(over, field{"status", "active"}, field{"start_date", now}, field{"billing_cycle_anchor", now})
	}
	for k, v := range m {
		over.set(k, v)
	}
	return over
}

// addSubscriptionItems creates a new subscription's items from its items
// parameter and sets its currency and embedded items list.
func (e *Emulator) addSubscriptionItems(a *account, params map[string]any, id string, now int64, over *fields) *apiError {
	items, _ := params["items"].(map[string]any)
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	it := a.tables["subscriptions_items"]
	currency := "usd"
	for _, k := range keys {
		im, _ := items[k].(map[string]any)
		pid, _ := im["price"].(string)
		pr, exists := a.tables["prices"].byID[pid]
		if !exists {
			return missing("price", pid, "items["+k+"][price]")
		}
		currency = gjson.GetBytes(pr.data, "currency").Str
		qty := int64(1)
		if q, ok := im["quantity"].(string); ok {
			fmt.Sscan(q, &qty)
		}
		si := a.newID("si_", e.rnd.Uint64)
		rec := &record{id: si, created: now, parent: id}
		rec.data = e.tpls.component("subscription_item").render(nil, fields{{"id", si}, {"created", now}, {"subscription", id}, {"price", raw(pr.data)}, {"quantity", qty},
			{"current_period_start", now}, {"current_period_end", now + 30*day}, {"metadata", map[string]string{}}, {"tax_rates", []any{}}})
		it.add(rec)
	}
	over.set("currency", currency)
	over.set("items", raw(e.embeddedList(a, defByName["subscriptions_items"], id)))
	return nil
}

// update applies POST /v1/<list>/{id}.
func (e *Emulator) update(r *http.Request, tg *target, a *account) (response, *apiError) {
	d := tg.def
	if e.sp.operation("POST", tg.tmpl) == nil {
		return response{}, &apiError{status: 404, typ: "invalid_request_error", msg: fmt.Sprintf("Unrecognized request URL (POST: %s).", r.URL.Path)}
	}
	params, ae := e.writeParams(r, "POST", tg.tmpl)
	if ae != nil {
		return response{}, ae
	}
	if ae := checkEmail(d, params); ae != nil {
		return response{}, ae
	}
	if u, ok := params["url"].(string); d.name == "webhook_endpoints" && ok && !loopbackURL(u) {
		return response{}, invalid("url", "The emulator delivers webhooks to loopback addresses only (http://127.0.0.1:PORT/…).")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := a.tables[d.name]
	rec, found := t.byID[tg.id]
	if !found {
		return response{}, missing(objectName(d.object), tg.id, "id")
	}
	schema := e.sp.component(d.object)
	apply := map[string]any{}
	for k, v := range params {
		if _, inObject := schema.Properties[k]; inObject && k != "id" && k != "object" {
			apply[k] = v
		}
	}
	data, err := e.updateRecord(a, t, rec, apply)
	if err != nil {
		if ae, isAPI := err.(*apiError); isAPI {
			return response{}, ae
		}
		return response{}, invalid("", err.Error())
	}
	return ok200(data), nil
}

// del answers DELETE /v1/<list>/{id}.
func (e *Emulator) del(r *http.Request, tg *target, a *account) (response, *apiError) {
	d := tg.def
	if !d.deletable || e.sp.operation("DELETE", tg.tmpl) == nil {
		return response{}, &apiError{status: 404, typ: "invalid_request_error", msg: fmt.Sprintf("Unrecognized request URL (DELETE: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.URL.Path)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := a.tables[d.name]
	rec, found := t.byID[tg.id]
	if !found {
		return response{}, missing(objectName(d.object), tg.id, "id")
	}
	return ok200(e.deleteRecord(a, t, rec)), nil
}

// detach answers POST /v1/payment_methods/{id}/detach.
func (e *Emulator) detach(r *http.Request, tg *target, a *account) (response, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := a.tables[tg.def.name]
	rec, found := t.byID[tg.id]
	if !found {
		return response{}, missing("payment_method", tg.id, "payment_method")
	}
	return ok200(e.deleteRecord(a, t, rec)), nil
}
