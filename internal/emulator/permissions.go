package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// permissions answers Stripe's 403 when a restricted key lacks the grant
// the request needs.
func (e *Emulator) permissions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		if ae := e.checkPermission(c.key, r.Method, c.tg, c.acct); ae != nil {
			e.writeErr(w, c.reqID, ae)
			return
		}
		next.ServeHTTP(w, r)
	})
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
