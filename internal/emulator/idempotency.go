package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
)

// apiHandler answers one request that passed every stage: the API itself.
type apiHandler func(r *http.Request, c *exchange) response

// idemEntry is the first response to an idempotency key.
type idemEntry struct {
	fingerprint string
	status      int
	body        []byte
}

// idempotency is the last stage: a POST with an Idempotency-Key runs once
// per account and key, and the same key again replays the first answer
// (with other parameters it is Stripe's idempotency_error). It also answers
// the requests the conditions drew to fail: an injected failure of a keyed
// POST is a lost answer (the request runs and its key keeps the real
// result, so a retry with the same key gets that result instead of running
// twice); any other such request does not run.
func (e *Emulator) idempotency(next apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		key := r.Header.Get("Idempotency-Key")
		if key == "" || r.Method != http.MethodPost {
			if c.knobs.fail {
				e.writeErr(w, c.reqID, serverError())
				return
			}
			res := next(r, c)
			e.write(w, res.status, res.body)
			return
		}
		if len(key) > 255 {
			e.writeErr(w, c.reqID, invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters long."))
			return
		}
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.PostForm.Encode()))
		fingerprint := hex.EncodeToString(sum[:])
		e.mu.Lock()
		prev, seen := c.acct.idem[key]
		e.mu.Unlock()
		if seen {
			if prev.fingerprint != fingerprint {
				e.writeErr(w, c.reqID, &apiError{status: 400, typ: "idempotency_error", code: "idempotency_key_in_use",
					msg: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)})
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Idempotency-Key", key)
			e.write(w, prev.status, prev.body)
			return
		}
		res := next(r, c)
		e.mu.Lock()
		if _, seen := c.acct.idem[key]; !seen {
			c.acct.idem[key] = &idemEntry{fingerprint: fingerprint, status: res.status, body: res.body}
		}
		e.mu.Unlock()
		w.Header().Set("Idempotency-Key", key)
		if c.knobs.fail {
			e.writeErr(w, c.reqID, serverError())
			return
		}
		e.write(w, res.status, res.body)
	})
}
