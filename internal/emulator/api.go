package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// endpoint answers one kind of target for one method.
type endpoint func(e *Emulator, r *http.Request, tg *target, a *account) (response, *apiError)

// endpointKey is what a path names (target.kind) and the method.
type endpointKey struct{ kind, method string }

// endpoints are the API's answers.
var endpoints = map[endpointKey]endpoint{
	{"account", http.MethodGet}: func(e *Emulator, _ *http.Request, tg *target, a *account) (response, *apiError) {
		return e.getAccount(a, tg)
	},
	{"accounts", http.MethodGet}: (*Emulator).listAccounts,
	{"events", http.MethodGet}:   (*Emulator).listEvents,
	{"event", http.MethodGet}: func(e *Emulator, _ *http.Request, tg *target, a *account) (response, *apiError) {
		return e.getEvent(tg, a)
	},
	{"list", http.MethodGet}:      (*Emulator).list,
	{"list", http.MethodPost}:     (*Emulator).create,
	{"object", http.MethodGet}:    (*Emulator).retrieve,
	{"object", http.MethodPost}:   (*Emulator).update,
	{"object", http.MethodDelete}: (*Emulator).del,
	{"detach", http.MethodPost}:   (*Emulator).detach,
	{"search", http.MethodGet}:    (*Emulator).search,
	{"empty", http.MethodGet}:     (*Emulator).emptyList,
	{"empty_object", http.MethodGet}: func(_ *Emulator, _ *http.Request, tg *target, _ *account) (response, *apiError) {
		return response{}, missing(objectName(tg.object), tg.id, "id")
	},
}

// handle answers a request that passed every stage, by what its path names
// and its method.
func (e *Emulator) handle(r *http.Request, c *exchange) response {
	ep, ok := endpoints[endpointKey{c.tg.kind, r.Method}]
	if !ok {
		ae := &apiError{status: 404, typ: "invalid_request_error",
			msg: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path)}
		return response{ae.status, ae.body(c.reqID)}
	}
	res, ae := ep(e, r, c.tg, c.acct)
	if ae != nil {
		return response{ae.status, ae.body(c.reqID)}
	}
	return res
}

func objectName(o string) string {
	if i := strings.LastIndexByte(o, '.'); i >= 0 && !strings.HasPrefix(o, "checkout.") {
		return o[i+1:]
	}
	return o
}

// ok200 is a successful answer.
func ok200(body []byte) response { return response{200, body} }
