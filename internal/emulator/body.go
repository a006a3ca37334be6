package emulator

import (
	"io"
	"mime"
	"net/http"
)

// body parses the request's form parameters and refuses a body it cannot
// read.
func (e *Emulator) body(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		if err := r.ParseForm(); err != nil {
			e.writeErr(w, c.reqID, invalid("", "Invalid request body: "+err.Error()))
			return
		}
		if ae := unreadBody(r); ae != nil {
			e.writeErr(w, c.reqID, ae)
			return
		}
		next.ServeHTTP(w, r)
	})
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
