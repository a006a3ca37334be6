package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/stripeline/stripeline/internal/stripe"
)

// ClientOption adjusts the client configuration built from the App, e.g.
// a command's --max-rps flag.
type ClientOption func(*stripe.Config)

// WithMaxRPS sets the global request rate when rps > 0.
func WithMaxRPS(rps float64) ClientOption {
	return func(c *stripe.Config) {
		if rps > 0 {
			c.GlobalRPS = rps
		}
	}
}

// Client builds the Stripe client from the App: the key from STRIPE_API_KEY
// or the config file, --api-base, --account, and the config's proxy and
// request rates.
func (a *App) Client(opts ...ClientOption) (*stripe.Client, error) {
	key := stripe.Secret(a.APIKey())
	if key == "" {
		return nil, errors.New("no Stripe API key: set STRIPE_API_KEY to a secret (sk_…) or restricted (rk_…) key, or api_key in the config file")
	}
	if !key.Valid() {
		return nil, errors.New("STRIPE_API_KEY is not a Stripe API key: set it to a key starting with sk_live_, sk_test_, rk_live_ or rk_test_")
	}
	if a.APIBase != "" {
		if u, err := url.Parse(a.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("--api-base %q is not an http(s) URL such as http://127.0.0.1:12111", a.APIBase)
		}
	}
	cfg := stripe.Config{
		Key:       key,
		APIBase:   a.APIBase,
		Account:   a.Account,
		Logger:    a.Logger(),
		UserAgent: "stripeline/" + Version,
		OnRetry:   a.reportRetry,
	}
	if c := a.Config(); c != nil {
		cfg.Proxy = c.Proxy
		cfg.GlobalRPS = c.MaxRPS
		cfg.EndpointRPS = c.EndpointRPS
	}
	for _, o := range opts {
		o(&cfg)
	}
	if a.env.clientOption != nil {
		a.env.clientOption(&cfg)
	}
	return stripe.New(cfg)
}

// reportRetry shows a retry as it happens: above the progress bars while
// they are drawn, otherwise as a log line on stderr (warn, info for 429s,
// which pacing expects now and then).
func (a *App) reportRetry(r stripe.Retry) {
	if sw, ok := a.Stderr.(*stderrWriter); ok && sw.drawing() {
		fmt.Fprintln(sw, r.String())
		return
	}
	logger := a.Logger()
	if logger == nil {
		fmt.Fprintln(a.Stderr, r.String())
		return
	}
	level := slog.LevelWarn
	if r.StatusCode == http.StatusTooManyRequests {
		level = slog.LevelInfo
	}
	var attrs []slog.Attr
	if r.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", r.RequestID))
	}
	logger.LogAttrs(context.Background(), level, r.String(), attrs...)
}
