package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// handle answers a request that passed every stage, by what its path names
// and its method.
func (e *Emulator) handle(r *http.Request, c *exchange) response {
	tg, a := c.tg, c.acct
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
