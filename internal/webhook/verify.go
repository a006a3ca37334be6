// Package webhook authenticates Stripe webhook deliveries: the
// Stripe-Signature header (t=…,v1=…[,v1=…]) is the HMAC-SHA256 of "t." and
// the raw body under the endpoint's signing secret, compared in constant
// time, with the timestamp within a tolerance (300 s by default), as Stripe
// specifies. Several secrets are accepted at once while one is rotated. The
// checks are stripe-go's own (github.com/stripe/stripe-go/v85/webhook);
// this package adds the secrets' redaction, several secrets, a body limit
// and reasons short enough to answer a refused delivery with.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v85/webhook"
)

// DefaultTolerance is how old a signature's timestamp may be.
const DefaultTolerance = stripewebhook.DefaultTolerance

// MaxBody bounds a delivery's body; Stripe's events are far smaller.
const MaxBody = 1 << 20

// Secret is an endpoint's signing secret (whsec_…). Printed any way it
// shows only its prefix and last four characters.
type Secret string

// String returns the redacted secret.
func (s Secret) String() string {
	if len(s) <= 10 {
		return "whsec_…"
	}
	return "whsec_…" + string(s[len(s)-4:])
}

// LogValue keeps the secret out of logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return s.String() }

// Reasons a delivery is refused. Each is short and safe to send back.
var (
	ErrNotSigned    = errors.New("no Stripe-Signature header")
	ErrBadHeader    = errors.New("malformed Stripe-Signature header")
	ErrBadSignature = errors.New("no signature matches the endpoint's secret")
	ErrStale        = errors.New("signature timestamp outside the tolerance")
	ErrTooLarge     = errors.New("body too large")
	ErrNotEvent     = errors.New("body is not a Stripe event")
	ErrNoSecret     = errors.New("no signing secret is set for this endpoint")
)

// Verifier checks deliveries for one endpoint.
type Verifier struct {
	// Secrets are the endpoint's current signing secrets (the new one and
	// the old one while rotating); a delivery signed by any of them passes.
	Secrets []Secret
	// Tolerance bounds the signature's age (default DefaultTolerance).
	Tolerance time.Duration
}

// Verify authenticates a delivery's raw body against its Stripe-Signature
// header and returns the event's id and type. A refusal wraps one of the
// Err… reasons above.
func (v Verifier) Verify(body []byte, header string) (id, typ string, err error) {
	if len(v.Secrets) == 0 {
		return "", "", ErrNoSecret
	}
	if len(body) > MaxBody {
		return "", "", ErrTooLarge
	}
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var last error
	for _, s := range v.Secrets {
		err := stripewebhook.ValidatePayloadWithTolerance(body, header, string(s), tolerance)
		if err == nil {
			last = nil
			break
		}
		last = reason(err)
		if !errors.Is(last, ErrBadSignature) {
			break // the header itself is wrong: no other secret helps
		}
	}
	if last != nil {
		return "", "", last
	}
	var ev struct {
		ID, Object, Type string
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Object != "event" || ev.ID == "" || ev.Type == "" {
		return "", "", ErrNotEvent
	}
	return ev.ID, ev.Type, nil
}

// reason maps stripe-go's verification errors to ours.
func reason(err error) error {
	switch {
	case errors.Is(err, stripewebhook.ErrNotSigned):
		return ErrNotSigned
	case errors.Is(err, stripewebhook.ErrInvalidHeader):
		return ErrBadHeader
	case errors.Is(err, stripewebhook.ErrTooOld):
		return ErrStale
	case errors.Is(err, stripewebhook.ErrNoValidSignature):
		return ErrBadSignature
	}
	return fmt.Errorf("%w: %v", ErrBadSignature, err)
}
