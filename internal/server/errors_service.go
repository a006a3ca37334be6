package server

import (
	"errors"
	"net/http"

	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/stripe"
)

// classifyService maps the pipeline package's errors (and Stripe's, met by
// a connection test) to what a client sees; nil for an error that is not
// the client's.
func classifyService(err error) *apiError {
	var busy *pipeline.BusyError
	var fe *pipeline.FieldError
	var se *stripe.Error
	var setting interface{ Setting() string }
	switch {
	case errors.As(err, &busy):
		ae := &apiError{Status: http.StatusConflict, Code: "busy", Message: err.Error()}
		if busy.Run != nil {
			ae.Run = busy.Run.ID
		}
		return ae
	case errors.Is(err, pipeline.ErrExists):
		return &apiError{Status: http.StatusConflict, Code: "exists", Field: "name", Message: err.Error()}
	case errors.Is(err, pipeline.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, pipeline.ErrRunning):
		return &apiError{Status: http.StatusConflict, Code: "busy", Message: err.Error()}
	case errors.Is(err, pipeline.ErrCannotDrop):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "cannot_drop", Field: "tables", Message: err.Error()}
	case errors.Is(err, pipeline.ErrPaused):
		return &apiError{Status: http.StatusConflict, Code: "paused", Message: err.Error()}
	case errors.As(err, &fe):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid", Field: jsonField(fe.Field), Message: err.Error()}
	case errors.As(err, &se):
		return stripeError(se, err)
	case errors.As(err, &setting):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid", Field: jsonField(setting.Setting()), Message: err.Error()}
	}
	return nil
}

// stripeError is what a client sees of Stripe's answer to a connection
// test: the key or the account is wrong (422), or Stripe is out of reach or
// failing (502). The message names the key only redacted.
func stripeError(se *stripe.Error, err error) *apiError {
	ae := &apiError{Status: http.StatusUnprocessableEntity, Code: "stripe", Field: jsonField(se.Setting()), Message: err.Error()}
	switch {
	case errors.Is(se, stripe.ErrAuthentication):
		ae.Code = "stripe_auth"
	case errors.Is(se, stripe.ErrPermission):
		ae.Code = "stripe_permission"
	case errors.Is(se, stripe.ErrNetwork), errors.Is(se, stripe.ErrServer), errors.Is(se, stripe.ErrRateLimited):
		ae.Status, ae.Code = http.StatusBadGateway, "stripe_unavailable"
	}
	return ae
}

// jsonField names a setting as the API's JSON does: the connection's
// settings sit under "connection".
func jsonField(setting string) string {
	switch setting {
	case "api_key", "key_ref", "account", "accounts", "platform_rps", "api_base", "proxy":
		return "connection." + setting
	}
	return setting
}
