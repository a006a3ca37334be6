package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// ErrorKind classifies an *Error. The kinds are also sentinel errors:
// errors.Is(err, stripe.ErrPermission) is true for a 403 *Error.
type ErrorKind string

// Error makes an ErrorKind usable as a sentinel error.
func (k ErrorKind) Error() string { return "stripe: " + string(k) }

// Error kinds.
var (
	// ErrAuthentication: the key was rejected (401).
	ErrAuthentication = ErrorKind("authentication failed")
	// ErrPermission: a restricted key lacks a permission (403).
	ErrPermission = ErrorKind("permission denied")
	// ErrNotFound: the object or endpoint does not exist (404).
	ErrNotFound = ErrorKind("not found")
	// ErrInvalidRequest: any other 4xx; not retried.
	ErrInvalidRequest = ErrorKind("invalid request")
	// ErrRateLimited: 429s outlasted the retries.
	ErrRateLimited = ErrorKind("rate limited")
	// ErrServer: 5xx responses outlasted the retries.
	ErrServer = ErrorKind("server error")
	// ErrNetwork: Stripe could not be reached, or the connection broke.
	ErrNetwork = ErrorKind("network error")
	// ErrIdempotency: an idempotency key was reused with other parameters.
	ErrIdempotency = ErrorKind("idempotency error")
)

// Error is a failed Stripe request after the client's retries. Its message
// is one sentence, never contains the API key, and ends with the Request-Id
// when Stripe sent one.
type Error struct {
	StatusCode int       // HTTP status, 0 for network errors
	Kind       ErrorKind // one of the Err* kinds
	Type       string    // Stripe's error.type, e.g. "invalid_request_error"
	Code       string    // Stripe's error.code, e.g. "resource_missing"
	Param      string    // the parameter at fault, if any
	Message    string    // Stripe's error.message (key redacted)
	RequestID  string    // Request-Id response header
	// Permission is the permission a restricted key lacks (403), e.g. "rak_customer_read".
	Permission string

	Method   string // request method
	Path     string // request path without the query string
	Attempts int    // attempts made, retries included
	Key      Secret // the key used (prints redacted)
	Base     string // API base URL

	cause error
}

// Is makes errors.Is(err, ErrPermission) and friends work.
func (e *Error) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k == e.Kind
}

// Unwrap returns the underlying network error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Setting names the setting an error points at, as the config file does:
// api_key for a rejected key, api_base for an unreachable API, max_rps for
// a request rate-limited to the end; "" for the others.
func (e *Error) Setting() string {
	switch e.Kind {
	case ErrAuthentication:
		return "api_key"
	case ErrNetwork:
		return "api_base"
	case ErrRateLimited:
		return "max_rps"
	}
	return ""
}

// Error returns one sentence saying what went wrong and what to do.
func (e *Error) Error() string {
	req := e.Method + " " + e.Path
	var b strings.Builder
	switch e.Kind {
	case ErrAuthentication:
		fmt.Fprintf(&b, "Stripe rejected the API key %s (401): check the key (api_key)", e.Key)
	case ErrPermission:
		perm := e.Permission
		if perm == "" {
			perm = "a permission this request needs"
		}
		fmt.Fprintf(&b, "the %s key %s may not %s: it lacks %s (403)", e.Key.Kind(), e.Key, req, perm)
	case ErrNotFound:
		fmt.Fprintf(&b, "%s: not found (404)", req)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	case ErrNetwork:
		reason := "the connection failed"
		if e.cause != nil {
			reason = networkReason(e.cause)
		}
		fmt.Fprintf(&b, "cannot reach Stripe at %s: %s — check the API base URL (api_base) and the network", e.Base, reason)
		if e.Attempts > 1 {
			fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
		}
	case ErrRateLimited:
		fmt.Fprintf(&b, "%s: Stripe kept rate-limiting the request (429) after %d attempts: lower the request rate (max_rps) or retry later", req, e.Attempts)
	case ErrServer:
		fmt.Fprintf(&b, "%s: Stripe server error (%d %s) after %d attempts", req, e.StatusCode, http.StatusText(e.StatusCode), e.Attempts)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	default:
		fmt.Fprintf(&b, "%s: Stripe rejected the request (%d", req, e.StatusCode)
		if e.Type != "" {
			fmt.Fprintf(&b, " %s", e.Type)
		}
		if e.Code != "" {
			fmt.Fprintf(&b, "/%s", e.Code)
		}
		b.WriteString(")")
		if e.Param != "" {
			fmt.Fprintf(&b, " on parameter %q", e.Param)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return e.Key.redact(b.String())
}

// kindFor maps a status and Stripe error type to a kind.
func kindFor(status int, typ string) ErrorKind {
	switch {
	case typ == "idempotency_error":
		return ErrIdempotency
	case status == http.StatusUnauthorized:
		return ErrAuthentication
	case status == http.StatusForbidden:
		return ErrPermission
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrServer
	default:
		return ErrInvalidRequest
	}
}

var permissionRE = regexp.MustCompile(`\brak_[a-z0-9_]+\b`)

// parsePermission finds the permission named in a 403 message, e.g.
// "Having the 'rak_charge_read' permission would allow this request to continue."
func parsePermission(msg string) string {
	return permissionRE.FindString(msg)
}

// networkReason shortens a transport error to its cause ("connection refused").
func networkReason(err error) string {
	msg := err.Error()
	for _, r := range []string{"connection refused", "connection reset by peer", "no such host", "i/o timeout", "unexpected EOF", "EOF", "network is unreachable", "TLS handshake timeout", "certificate"} {
		if strings.Contains(msg, r) {
			if r == "certificate" {
				return "TLS certificate problem (" + lastPart(msg) + ")"
			}
			return r
		}
	}
	if errors.Is(err, errAttemptTimeout) {
		return "no response within the request timeout"
	}
	return lastPart(msg)
}

func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// ConfigError is a Config field New refused: Setting names it as the
// config file does (api_key, api_base, max_rps, endpoint_rps, proxy).
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *ConfigError) Unwrap() error { return e.Err }

// Setting returns the config key of the refused field.
func (e *ConfigError) Setting() string { return e.Field }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}
