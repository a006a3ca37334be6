package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

// apiError is an error answered in Stripe's shape.
type apiError struct {
	status                int
	typ, code, param, msg string
	header                map[string]string
}

func (e *apiError) Error() string { return e.msg }

func (e *apiError) body(reqID string) []byte {
	f := fields{}
	if e.code != "" {
		f = append(f, field{"code", e.code}, field{"doc_url", "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.code, "_", "-")})
	}
	f = append(f, field{"message", e.msg})
	if e.param != "" {
		f = append(f, field{"param", e.param})
	}
	f = append(f, field{"request_log_url", "https://dashboard.stripe.com/test/logs/" + reqID}, field{"type", e.typ})
	return appendValue(nil, fields{{"error", f}})
}

func invalid(param, msg string) *apiError {
	return &apiError{status: 400, typ: "invalid_request_error", param: param, msg: msg}
}

func unknownParam(p string) *apiError {
	return &apiError{status: 400, typ: "invalid_request_error", code: "parameter_unknown", param: p, msg: "Received unknown parameter: " + p}
}

func missing(object, id, param string) *apiError {
	return &apiError{status: 404, typ: "invalid_request_error", code: "resource_missing", param: param, msg: fmt.Sprintf("No such %s: '%s'", object, id)}
}

// response is a handler's answer, recorded whole so idempotency keys can replay it.
type response struct {
	status int
	body   []byte
}

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

// ServeHTTP answers Stripe API requests under /v1/ and the emulator's
// admin endpoints under /_emulator/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := fmt.Sprintf("req_%014d", e.reqSeq.Add(1))
	w.Header().Set("Request-Id", reqID)
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveAdmin(w, r)
		return
	}
	e.requests.Add(1)
	n := e.inflight.Add(1)
	defer e.inflight.Add(-1)
	for {
		p := e.peak.Load()
		if n <= p || e.peak.CompareAndSwap(p, n) {
			break
		}
	}
	tg := e.route(r.Method, r.URL.Path)
	e.statsMu.Lock()
	e.byEndpoint[tg.endpoint]++
	e.statsMu.Unlock()

	e.faultMu.Lock()
	latency := e.latency
	global := e.global
	var endpoint rateLimiter
	if e.endpointRPS > 0 {
		l, ok := e.endpoints[tg.endpoint]
		if !ok {
			l = newLimiter(e.endpointRPS)
			e.endpoints[tg.endpoint] = l
		}
		endpoint = l
	}
	drop := e.dropRate > 0 && e.faultRand.Float64() < e.dropRate
	fail := e.failRate > 0 && e.faultRand.Float64() < e.failRate
	e.faultMu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if drop {
		e.dropped.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if global != nil && !global.Allow() {
		e.writeErr(w, reqID, rateLimited("global-rate"))
		return
	}
	if endpoint != nil && !endpoint.Allow() {
		e.writeErr(w, reqID, rateLimited("endpoint-rate"))
		return
	}
	key, aerr := e.authenticate(r)
	if aerr != nil {
		e.writeErr(w, reqID, aerr)
		return
	}
	e.mu.RLock()
	a, ok := e.account(r.Header.Get("Stripe-Account"))
	if !ok && r.Header.Get("Stripe-Account") == e.accounts[0].id {
		a, ok = e.accounts[0], true
	}
	e.mu.RUnlock()
	if !ok {
		e.writeErr(w, reqID, &apiError{status: 403, typ: "invalid_request_error", code: "account_invalid",
			msg: fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). Application access may have been revoked.", maskKey(key), r.Header.Get("Stripe-Account"))})
		return
	}
	if perr := e.checkPermission(key, r.Method, tg, a); perr != nil {
		e.writeErr(w, reqID, perr)
		return
	}
	if err := r.ParseForm(); err != nil {
		e.writeErr(w, reqID, invalid("", "Invalid request body: "+err.Error()))
		return
	}
	if ae := unreadBody(r); ae != nil {
		e.writeErr(w, reqID, ae)
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	var fingerprint string
	if idemKey != "" && r.Method == http.MethodPost {
		if len(idemKey) > 255 {
			e.writeErr(w, reqID, invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters long."))
			return
		}
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.PostForm.Encode()))
		fingerprint = hex.EncodeToString(sum[:])
		e.mu.Lock()
		prev, seen := a.idem[idemKey]
		e.mu.Unlock()
		if seen {
			if prev.fingerprint != fingerprint {
				e.writeErr(w, reqID, &apiError{status: 400, typ: "idempotency_error", code: "idempotency_key_in_use",
					msg: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", idemKey)})
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Idempotency-Key", idemKey)
			e.write(w, prev.status, prev.body)
			return
		}
	}
	var res response
	if !fail || fingerprint != "" {
		// An injected failure of a request with an idempotency key is a
		// lost answer: the request runs and its key keeps the real result,
		// so a retry with the same key gets that result (replayed) instead
		// of running twice, and a retry with a new key runs twice.
		res = e.handle(r, tg, a, reqID)
	}
	if fingerprint != "" {
		e.mu.Lock()
		if _, seen := a.idem[idemKey]; !seen {
			a.idem[idemKey] = &idemEntry{fingerprint: fingerprint, status: res.status, body: res.body}
		}
		e.mu.Unlock()
		w.Header().Set("Idempotency-Key", idemKey)
	}
	if fail {
		res = response{500, (&apiError{status: 500, typ: "api_error", msg: "An unknown error occurred"}).body(reqID)}
		w.Header().Set("Stripe-Should-Retry", "true")
	}
	e.write(w, res.status, res.body)
}

// unreadBody refuses a POST whose body ParseForm did not read because it is
// not form-encoded (JSON, text, no Content-Type), as Stripe does: answering
// it as a request without parameters would create empty objects.
func unreadBody(r *http.Request) *apiError {
	if r.Method != http.MethodPost {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/x-www-form-urlencoded" {
		return nil
	}
	if ct == "" {
		// No Content-Type is fine for a POST without a body.
		if n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1)); n == 0 {
			return nil
		}
	}
	return invalid("", "Invalid request: unsupported Content-Type "+ct+". If error persists and you need assistance, please contact support@stripe.com.")
}

type rateLimiter interface{ Allow() bool }

func rateLimited(reason string) *apiError {
	return &apiError{status: 429, typ: "invalid_request_error", code: "rate_limit",
		msg:    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
		header: map[string]string{"Stripe-Rate-Limited-Reason": reason, "Stripe-Should-Retry": "true"}}
}

func (e *Emulator) write(w http.ResponseWriter, status int, body []byte) {
	if status >= 500 {
		e.serverErrors.Add(1)
	}
	if status == 429 {
		e.rateLimited.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Stripe-Version", catalog.SpecVersion())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (e *Emulator) writeErr(w http.ResponseWriter, reqID string, ae *apiError) {
	for k, v := range ae.header {
		w.Header().Set(k, v)
	}
	e.write(w, ae.status, ae.body(reqID))
}

func (e *Emulator) errResponse(reqID string, ae *apiError) response {
	return response{ae.status, ae.body(reqID)}
}

// authenticate returns the request's API key or the 401 Stripe answers.
func (e *Emulator) authenticate(r *http.Request) (string, *apiError) {
	var key string
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok {
			key = strings.TrimSpace(k)
		} else if u, _, ok := r.BasicAuth(); ok {
			key = u
		}
	}
	if key == "" {
		return "", &apiError{status: 401, typ: "invalid_request_error",
			msg: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."}
	}
	for _, k := range e.cfg.Keys {
		if k == key {
			return key, nil
		}
	}
	if validKeyShape(key) {
		return key, nil
	}
	return "", &apiError{status: 401, typ: "invalid_request_error", code: "api_key_invalid"[:0],
		msg: "Invalid API Key provided: " + maskKey(key)}
}

func validKeyShape(k string) bool {
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if rest, ok := strings.CutPrefix(k, p); ok && len(rest) >= 3 {
			for _, c := range rest {
				if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
					return false
				}
			}
			return true
		}
	}
	return false
}

// maskKey shows a key as Stripe does: its prefix and last four characters.
func maskKey(k string) string {
	prefix := ""
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"} {
		if strings.HasPrefix(k, p) {
			prefix = p
		}
	}
	tail := ""
	if len(k) >= len(prefix)+4 {
		tail = k[len(k)-4:]
	}
	return prefix + "****" + tail
}

// checkPermission enforces restricted keys' grants: rak_<object>_read for
// reads, rak_<object>_write for writes (which include reads).
func (e *Emulator) checkPermission(key, method string, tg *target, a *account) *apiError {
	grants, ok := e.cfg.Restricted[key]
	if !ok || tg.object == "" {
		return nil
	}
	obj := strings.ReplaceAll(tg.object, ".", "_")
	need := "rak_" + obj + "_read"
	if method != http.MethodGet {
		need = "rak_" + obj + "_write"
	}
	for _, g := range grants {
		if g == need || (method == http.MethodGet && g == "rak_"+obj+"_write") {
			return nil
		}
	}
	return &apiError{status: 403, typ: "invalid_request_error",
		msg: fmt.Sprintf("The provided key '%s' does not have the required permissions for this endpoint on account '%s'. Having the '%s' permission would allow this request to continue.", maskKey(key), a.id, need)}
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

// handle runs an authenticated request.
func (e *Emulator) handle(r *http.Request, tg *target, a *account, reqID string) response {
	var res response
	var ae *apiError
	switch {
	case tg.kind == "account" && r.Method == http.MethodGet:
		res, ae = e.getAccount(a, tg)
	case tg.kind == "accounts" && r.Method == http.MethodGet:
		res, ae = e.listAccounts(r, tg, a)
	case tg.kind == "events" && r.Method == http.MethodGet:
		res, ae = e.listEvents(r, tg, a)
	case tg.kind == "event" && r.Method == http.MethodGet:
		res, ae = e.getEvent(tg, a)
	case tg.kind == "list" && r.Method == http.MethodGet:
		res, ae = e.list(r, tg, a)
	case tg.kind == "list" && r.Method == http.MethodPost:
		res, ae = e.create(r, tg, a)
	case tg.kind == "object" && r.Method == http.MethodGet:
		res, ae = e.retrieve(r, tg, a)
	case tg.kind == "object" && r.Method == http.MethodPost:
		res, ae = e.update(r, tg, a)
	case tg.kind == "object" && r.Method == http.MethodDelete:
		res, ae = e.del(r, tg, a)
	case tg.kind == "detach" && r.Method == http.MethodPost:
		res, ae = e.detach(r, tg, a)
	case tg.kind == "search" && r.Method == http.MethodGet:
		res, ae = e.search(r, tg, a)
	case tg.kind == "empty" && r.Method == http.MethodGet:
		res, ae = e.emptyList(r, tg, a)
	case tg.kind == "empty_object" && r.Method == http.MethodGet:
		ae = missing(objectName(tg.object), tg.id, "id")
	default:
		ae = &apiError{status: 404, typ: "invalid_request_error",
			msg: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path)}
	}
	if ae != nil {
		return e.errResponse(reqID, ae)
	}
	return res
}

func objectName(o string) string {
	if i := strings.LastIndexByte(o, '.'); i >= 0 && !strings.HasPrefix(o, "checkout.") {
		return o[i+1:]
	}
	return o
}

func ok(body []byte) response { return response{200, body} }

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
		pid := tg.params[d.parentParam]
		if d.parentInQuery {
			pid = q.Get(d.parentParam)
			if pid == "" {
				return response{}, invalid(d.parentParam, "Missing required param: "+d.parentParam+".")
			}
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
	return ok(renderList(url, out, more)), nil
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

func ok200(b []byte) response { return response{200, b} }

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
		pid := tg.params[s.ParentParam]
		if s.ParentInQuery {
			pid = q.Get(s.ParentParam)
			if pid == "" {
				return response{}, invalid(s.ParentParam, "Missing required param: "+s.ParentParam+".")
			}
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

func (e *Emulator) getAccount(a *account, tg *target) (response, *apiError) {
	if tg.id != "" {
		e.mu.RLock()
		b, found := e.byAcct[tg.id]
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
		for _, c := range e.accounts[1:] {
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

var _ = context.Background
var _ = bytes.Equal
