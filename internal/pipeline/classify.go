package pipeline

import (
	"context"
	"errors"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// ErrorKind says why a run failed.
type ErrorKind string

// Error kinds of a failed run. Auth and permission failures pause the
// pipeline's schedule until it is edited or resumed; config and invalid
// requests are not retried; the others are retried with backoff.
const (
	KindAuth        ErrorKind = "auth"        // Stripe rejected the key (401)
	KindPermission  ErrorKind = "permission"  // a restricted key lacks a permission (403)
	KindConfig      ErrorKind = "config"      // a setting is wrong (key variable unset, bad stream, …)
	KindNetwork     ErrorKind = "network"     // Stripe could not be reached
	KindStripe      ErrorKind = "stripe"      // Stripe answered with an error (5xx, 429, 4xx)
	KindDestination ErrorKind = "destination" // the destination failed or is busy
	KindInterrupted ErrorKind = "interrupted" // the run was stopped (shutdown, cancel)
)

// Transient reports whether a run failing with this kind is retried.
func (k ErrorKind) Transient() bool {
	switch k {
	case KindNetwork, KindStripe, KindDestination, KindInterrupted:
		return true
	}
	return false
}

// PausesSchedule reports whether a failure of this kind pauses the pipeline.
func (k ErrorKind) PausesSchedule() bool { return k == KindAuth || k == KindPermission }

// Classify names the kind of a run's error. seen holds the Stripe errors
// the run's client met: a run that failed stream by stream
// (engine.ErrStreamsFailed) is as bad as the worst of them. retry says
// whether the failure is worth retrying.
func Classify(err error, seen []error) (kind ErrorKind, retry bool) {
	if errors.Is(err, engine.ErrRowsRejected) {
		// Stripe refused rows of a two-way push: the same rows would be
		// refused again (they are held until they change).
		return KindStripe, false
	}
	if errors.Is(err, engine.ErrStreamsFailed) {
		kind = KindStripe
		for _, e := range seen {
			if k, _ := classifyOne(e); k == KindAuth || k == KindPermission {
				return k, false
			} else if k == KindNetwork {
				kind = k
			}
		}
		retry = true
		for _, e := range seen {
			if errors.Is(e, stripe.ErrInvalidRequest) || errors.Is(e, stripe.ErrNotFound) {
				retry = false
			}
		}
		return kind, retry
	}
	return classifyOne(err)
}

func classifyOne(err error) (ErrorKind, bool) {
	var fe *FieldError
	var le *dest.LockedError
	var setting interface{ Setting() string }
	switch {
	case errors.Is(err, stripe.ErrAuthentication):
		return KindAuth, false
	case errors.Is(err, stripe.ErrPermission):
		return KindPermission, false
	case errors.Is(err, stripe.ErrNetwork):
		return KindNetwork, true
	case errors.Is(err, stripe.ErrServer), errors.Is(err, stripe.ErrRateLimited):
		return KindStripe, true
	case errors.Is(err, stripe.ErrInvalidRequest), errors.Is(err, stripe.ErrNotFound), errors.Is(err, stripe.ErrIdempotency):
		return KindStripe, false
	case errors.As(err, &fe), errors.As(err, &setting):
		return KindConfig, false
	case errors.As(err, &le), errors.Is(err, engine.ErrLockLost):
		return KindDestination, true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindInterrupted, true
	}
	return KindDestination, true
}
