package emulator

import (
	"net/http"
	"strings"
)

// auth answers Stripe's 401 to a request without an acceptable API key and
// notes the key of the others.
func (e *Emulator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		key, ae := e.authenticate(r)
		if ae != nil {
			e.writeErr(w, c.reqID, ae)
			return
		}
		c.key = key
		next.ServeHTTP(w, r)
	})
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
	return "", &apiError{status: 401, typ: "invalid_request_error", msg: "Invalid API Key provided: " + maskKey(key)}
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
