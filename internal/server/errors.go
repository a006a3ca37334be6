package server

import (
	"encoding/json"
	"errors"
	"net/http"
)

// apiError is what a client sees of an error: a status, a stable code, a
// sentence naming the problem and the fix, and the field at fault.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Run is the run in the way of a refused run (code "busy").
	Run int64 `json:"run,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

// errorBody is the JSON of every API error.
type errorBody struct {
	Error *apiError `json:"error"`
}

// badRequest is a client error about field.
func badRequest(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid", Field: field, Message: msg}
}

// errInternal is what a client sees of a failure that is not theirs; the
// server's log holds the cause under the request id.
func errInternal(reqID string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "internal",
		Message: "the server failed (request " + reqID + "): its log says why"}
}

// classify is the one place that maps error kinds to status codes and safe
// messages, for the API and the UI alike. It reports false for an error that
// is not the client's, whose text stays in the server's log.
func classify(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	if ae := classifyHistory(err); ae != nil {
		return ae, true
	}
	if ae := classifyService(err); ae != nil {
		return ae, true
	}
	return nil, false
}

// shown is what a client sees of err: classify's mapping, or — for a
// failure that is not the client's — errInternal, the cause logged under
// the request id.
func (s *Server) shown(r *http.Request, err error) *apiError {
	if ae, ok := classify(err); ok {
		return ae
	}
	id := requestID(r.Context())
	s.log.Error("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "error", err)
	return errInternal(id)
}

// writeError answers an API request with err as JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.shown(r, err)
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stripeline"`)
	}
	writeJSON(w, ae.Status, errorBody{Error: ae})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
