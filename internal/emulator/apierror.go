package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// apiError is an error answered in Stripe's shape.
type apiError struct {
	status                int
	typ, code, param, msg string
	header                map[string]string
}

func (e *apiError) Error() string { return e.msg }

// body is the error's JSON as Stripe sends it.
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

// write sends an answer with Stripe's headers and counts the 429s and 5xxs.
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

// writeErr sends an error in Stripe's shape, with its headers.
func (e *Emulator) writeErr(w http.ResponseWriter, reqID string, ae *apiError) {
	for k, v := range ae.header {
		w.Header().Set(k, v)
	}
	e.write(w, ae.status, ae.body(reqID))
}
