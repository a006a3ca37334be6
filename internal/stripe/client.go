// Package stripe is stripeline's Stripe API client: every request to Stripe
// (or to the emulator) goes through one *Client, which authenticates, paces
// requests with a global and a per-endpoint token bucket, retries what is
// safe to retry, pages through lists and turns failures into typed *Error
// values that never contain the API key.
//
// Requests are sent with stripe-go's raw requests (rawrequest.Client) with
// stripe-go's own retries switched off: this package owns pacing and retries
// (DESIGN §4). Because stripe-go does not keep the status and headers of an
// error response whose body is not Stripe's error JSON (a proxy's 502, a
// truncated body), the client wraps the HTTP transport with a recorder that
// keeps the last response's status and headers per attempt.
package stripe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/rawrequest"

	"github.com/stripeline/stripeline/internal/catalog"
)

// DefaultAPIBase is Stripe's API.
const DefaultAPIBase = "https://api.stripe.com"

// Defaults for Config's zero values. They stay below Stripe's limits
// (100/s live, 25/s test, 25/s per endpoint) to leave room for the
// account's own traffic.
const (
	DefaultTestRPS     = 20
	DefaultLiveRPS     = 80
	DefaultEndpointRPS = 20
	DefaultMaxRetries  = 8
	// DefaultUnreachedRetries: 8 to 16 s of backoff before giving up
	// on a base that never answered.
	DefaultUnreachedRetries = 5
	DefaultMaxBackoff       = 20 * time.Second
	DefaultTimeout          = 80 * time.Second
)

// Config configures a Client. Zero values take the defaults above.
type Config struct {
	// Key is the secret (sk_) or restricted (rk_) API key.
	Key Secret
	// APIBase is the API's base URL, default https://api.stripe.com.
	APIBase string
	// Account is a connected account (acct_…) sent as Stripe-Account.
	Account string
	// Version pins Stripe-Version, default catalog.SpecVersion().
	Version string
	// GlobalRPS is the request rate shared by every request of the client:
	// 0 means 20/s for test keys, 80/s for live keys.
	GlobalRPS float64
	// EndpointRPS is the rate of each endpoint (method + path with ids
	// normalised), and of all search endpoints together: 0 means 20/s.
	EndpointRPS float64
	// MaxRetries bounds the retries of one request: 0 means 8.
	MaxRetries int
	// UnreachedRetries bounds the retries of a network error while no
	// request of the client has had an answer (the base is down, mistyped
	// or blocked), so a run gives up in seconds instead of riding out
	// MaxRetries: 0 means 5. It never raises MaxRetries. Once a request
	// has given up that way, later ones are not retried until an answer
	// comes.
	UnreachedRetries int
	// OnRetry, when set, is told about every retry before the client waits
	// for it (network errors, 5xx, 409, 429): a face shows it so waiting is
	// visible. It is called from the goroutine making the request, possibly
	// from several at once, and should return quickly: the retry waits for it.
	OnRetry func(Retry)
	// MaxBackoff caps the exponential backoff between retries: 0 means 20s.
	MaxBackoff time.Duration
	// Timeout bounds one attempt, response body included: 0 means 80s.
	Timeout time.Duration
	// ConnectTimeout bounds the DNS lookup and TCP connect of a new
	// connection: 0 means 10s. Ignored when HTTPClient is set.
	ConnectTimeout time.Duration
	// Proxy is an HTTP(S) proxy URL; empty means HTTPS_PROXY/HTTP_PROXY
	// from the environment. Ignored when HTTPClient is set.
	Proxy string
	// HTTPClient replaces the default HTTP client (its Transport is wrapped).
	HTTPClient *http.Client
	// Logger receives debug lines about retries and rate changes.
	Logger *slog.Logger
	// UserAgent is sent as User-Agent, default "stripeline/dev".
	UserAgent string
}

// Request is one API call.
type Request struct {
	Method string // GET, POST or DELETE; empty means GET
	Path   string // e.g. "/v1/customers"
	Query  url.Values
	Body   url.Values // form body of a POST
	// IdempotencyKey is sent on POSTs; one is generated when empty, so a
	// retried create is safe.
	IdempotencyKey string
	// Account overrides Config.Account for this request.
	Account string
	// NoRetry sends the request once.
	NoRetry bool
}

// Response is a successful (2xx/3xx) answer.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	RequestID  string
	// Replayed is true when Stripe answered from its idempotency cache.
	Replayed bool
}

// Stats counts what the client did since it was created.
type Stats struct {
	Requests      int64   // attempts sent, retries included
	Retries       int64   // attempts that were retries
	RateLimited   int64   // 429 responses seen
	ServerErrors  int64   // 5xx responses seen
	NetworkErrors int64   // transport failures seen
	InFlight      int64   // requests on the wire now
	InFlightPeak  int64   // most requests on the wire at once
	GlobalRPS     float64 // the global bucket's current rate (lowered after 429s)
}

// Client talks to Stripe. It is safe for concurrent use; all its requests
// share one global token bucket and per-endpoint buckets.
type Client struct {
	cfg    Config
	raw    rawrequest.Client
	logger *slog.Logger

	global      *bucket
	search      *bucket
	endpointRPS float64
	epMu        sync.Mutex
	endpoints   map[string]*bucket

	// Hooks replaced by tests: time, sleeping and jitter.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64
	// admitted, when set, sees the time each token of each bucket (an
	// endpoint key, "search" or "global") was scheduled for.
	admitted func(bucket string, at time.Time)

	requests, retries, rateLimited, serverErrors, networkErrors atomic.Int64
	inFlight, inFlightPeak                                      atomic.Int64
	// answered is set by the first response of any status: until then the
	// base may be down or mistyped, and network errors are retried less.
	answered atomic.Bool
	// unreachable is set when a request gave up on network errors before
	// any answer came; requests after it are not retried until one does.
	unreachable atomic.Bool
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Key == "" {
		return nil, configErr("api_key", "no Stripe API key is set")
	}
	if !cfg.Key.Valid() {
		return nil, configErr("api_key", "the API key %s is not a Stripe secret or restricted key: it must start with sk_live_, sk_test_, rk_live_ or rk_test_", cfg.Key)
	}
	if cfg.APIBase == "" {
		cfg.APIBase = DefaultAPIBase
	}
	u, err := url.Parse(cfg.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, configErr("api_base", "%q is not an http(s) URL such as http://127.0.0.1:12111", cfg.APIBase)
	}
	cfg.APIBase = strings.TrimSuffix(cfg.APIBase, "/")
	if cfg.Version == "" {
		cfg.Version = catalog.SpecVersion()
	}
	if cfg.GlobalRPS == 0 {
		cfg.GlobalRPS = DefaultTestRPS
		if cfg.Key.Mode() == "live" {
			cfg.GlobalRPS = DefaultLiveRPS
		}
	}
	if cfg.EndpointRPS == 0 {
		cfg.EndpointRPS = DefaultEndpointRPS
	}
	if cfg.GlobalRPS < 0 {
		return nil, configErr("max_rps", "must be positive, got %v", cfg.GlobalRPS)
	}
	if cfg.EndpointRPS < 0 {
		return nil, configErr("endpoint_rps", "must be positive, got %v", cfg.EndpointRPS)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.UnreachedRetries == 0 {
		cfg.UnreachedRetries = DefaultUnreachedRetries
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "stripeline/dev"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	hc := cfg.HTTPClient
	if hc == nil {
		var proxy *url.URL
		if cfg.Proxy != "" {
			pu, err := url.Parse(cfg.Proxy)
			if err != nil || pu.Host == "" {
				return nil, configErr("proxy", "%q is not a URL such as http://proxy:3128", cfg.Proxy)
			}
			proxy = pu
		}
		hc = &http.Client{Transport: newTransport(proxy, cfg.ConnectTimeout)}
	}
	wrapped := *hc
	inner := wrapped.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	wrapped.Transport = recorder{inner}

	backend := stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:               stripego.String(cfg.APIBase),
		HTTPClient:        &wrapped,
		MaxNetworkRetries: stripego.Int64(0),
		EnableTelemetry:   stripego.Bool(false),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	})
	rb, ok := backend.(stripego.RawRequestBackend)
	if !ok {
		return nil, errors.New("stripe-go backend does not support raw requests")
	}

	c := &Client{
		cfg:         cfg,
		raw:         rawrequest.Client{B: rb, Key: cfg.Key.Reveal()},
		logger:      logger,
		endpointRPS: cfg.EndpointRPS,
		endpoints:   map[string]*bucket{},
		now:         time.Now,
		sleep:       sleepCtx,
		jitter:      mrand.Float64,
	}
	c.global = newBucket(cfg.GlobalRPS)
	c.search = newBucket(cfg.EndpointRPS)
	return c, nil
}

// Key returns the client's API key (it prints redacted).
func (c *Client) Key() Secret { return c.cfg.Key }

// Account returns the connected account the client acts on, or "".
func (c *Client) Account() string { return c.cfg.Account }

// APIBase returns the base URL requests go to.
func (c *Client) APIBase() string { return c.cfg.APIBase }

// Version returns the pinned Stripe-Version.
func (c *Client) Version() string { return c.cfg.Version }

// Rates returns the configured global and per-endpoint request rates.
func (c *Client) Rates() (global, endpoint float64) { return c.cfg.GlobalRPS, c.cfg.EndpointRPS }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:      c.requests.Load(),
		Retries:       c.retries.Load(),
		RateLimited:   c.rateLimited.Load(),
		ServerErrors:  c.serverErrors.Load(),
		NetworkErrors: c.networkErrors.Load(),
		InFlight:      c.inFlight.Load(),
		InFlightPeak:  c.inFlightPeak.Load(),
		GlobalRPS:     c.global.rate(),
	}
}

// Do sends req, waiting on the global and endpoint buckets before every
// attempt and retrying as shouldRetry decides. A non-2xx answer (after
// retries) is an *Error; a cancelled ctx returns ctx's error.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		return nil, fmt.Errorf("%s %s: method not supported by the Stripe API", method, req.Path)
	}
	pathQ := req.Path
	if len(req.Query) > 0 {
		pathQ += "?" + req.Query.Encode()
	}
	content := ""
	if method == http.MethodPost && len(req.Body) > 0 {
		content = req.Body.Encode()
	}
	idem := req.IdempotencyKey
	if method == http.MethodPost && idem == "" {
		idem = newIdempotencyKey()
	}
	account := req.Account
	if account == "" {
		account = c.cfg.Account
	}
	ep := EndpointKey(method, req.Path)

	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, req.Path, err)
		}
		if err := c.pace(ctx, ep); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, req.Path, err)
		}
		if attempt > 1 {
			c.retries.Add(1)
		}
		resp, apiErr, header := c.send(ctx, method, pathQ, content, idem, account)
		if apiErr == nil {
			c.global.recover(c.now())
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, req.Path, ctx.Err())
		}
		apiErr.Method, apiErr.Path, apiErr.Attempts = method, req.Path, attempt
		d := c.shouldRetry(req, method, idem, attempt, apiErr, header)
		if !d.retry {
			if apiErr.Kind == ErrNetwork && !c.answered.Load() && !req.NoRetry {
				c.unreachable.Store(true)
			}
			return nil, apiErr
		}
		r := Retry{
			Method: method, Path: req.Path, Attempt: attempt + 1, MaxAttempts: d.maxAttempts, Delay: d.delay,
			StatusCode: apiErr.StatusCode, Reason: d.reason, RequestID: apiErr.RequestID, Base: c.cfg.APIBase,
			Unreached: apiErr.Kind == ErrNetwork && !c.answered.Load(),
		}
		c.logger.Debug("retrying stripe request", "method", method, "path", req.Path, "attempt", r.Attempt,
			"max_attempts", r.MaxAttempts, "status", r.StatusCode, "request_id", r.RequestID, "reason", r.Reason, "delay", r.Delay)
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(r)
		}
		if err := c.sleep(ctx, d.delay); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, req.Path, err)
		}
	}
}

var errAttemptTimeout = errors.New("request timed out")

// send makes one attempt. On failure it returns an *Error and the response
// headers (if a response came).
func (c *Client) send(ctx context.Context, method, pathQ, content, idem, account string) (*Response, *Error, http.Header) {
	actx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errAttemptTimeout)
	defer cancel()
	rec := &exchange{}
	actx = context.WithValue(actx, exchangeKey{}, rec)

	params := &stripego.RawParams{}
	params.Context = actx
	params.Headers = http.Header{
		"Stripe-Version": {c.cfg.Version},
		"User-Agent":     {c.cfg.UserAgent},
	}
	if idem != "" {
		params.IdempotencyKey = stripego.String(idem)
	}
	if account != "" {
		params.StripeAccount = stripego.String(account)
	}

	c.requests.Add(1)
	n := c.inFlight.Add(1)
	for {
		p := c.inFlightPeak.Load()
		if n <= p || c.inFlightPeak.CompareAndSwap(p, n) {
			break
		}
	}
	res, err := c.raw.RawRequest(method, pathQ, content, params)
	c.inFlight.Add(-1)
	if err == nil || rec.status != 0 {
		c.answered.Store(true)
	}
	if err == nil {
		return &Response{
			StatusCode: res.StatusCode,
			Header:     res.Header,
			Body:       res.RawJSON,
			RequestID:  res.RequestID,
			Replayed:   res.Header.Get("Idempotent-Replayed") == "true",
		}, nil, nil
	}

	e := &Error{Key: c.cfg.Key, Base: c.cfg.APIBase}
	var se *stripego.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode != 0:
		e.StatusCode = se.HTTPStatusCode
		e.Type, e.Code, e.Param = string(se.Type), string(se.Code), se.Param
		e.Message = c.cfg.Key.redact(se.Msg)
		e.RequestID = se.RequestID
	case rec.status >= 400:
		// An error body that is not Stripe's error JSON (a proxy's page, a
		// cut-off body): the status decides.
		e.StatusCode = rec.status
		e.RequestID = rec.header.Get("Request-Id")
	default:
		// No response, or a success whose body broke off.
		e.Kind = ErrNetwork
		e.RequestID = rec.header.Get("Request-Id")
		e.cause = err
		if context.Cause(actx) == errAttemptTimeout {
			e.cause = fmt.Errorf("%w: %w", errAttemptTimeout, err)
		}
		c.networkErrors.Add(1)
		return nil, e, rec.header
	}
	e.Kind = kindFor(e.StatusCode, e.Type)
	if e.Kind == ErrPermission {
		e.Permission = parsePermission(e.Message)
	}
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		c.rateLimited.Add(1)
		if rate, cut := c.global.cut(c.now()); cut {
			c.logger.Debug("stripe rate limited: lowering the global request rate", "rps", rate)
		}
	case e.StatusCode >= 500:
		c.serverErrors.Add(1)
	}
	return nil, e, rec.header
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newIdempotencyKey returns a random UUID-shaped key.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return "stripeline-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
