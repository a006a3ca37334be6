package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/webhook"
)

// Webhooks are a pipeline's live path (DESIGN §9): Stripe delivers each
// event to POST /webhooks/{pipeline}, where ReceiveWebhook verifies its
// signature against the pipeline's signing secrets (stored sealed in the
// control store's settings, several while one is rotated) and applies it
// through an engine.Applier; the scheduled events sweep repairs what did
// not arrive.

// webhookSetting is the settings key of a pipeline's webhook endpoints.
func webhookSetting(name string) string { return "webhooks:" + name }

// WebhookConfig is what the control store keeps of a pipeline's webhooks.
type WebhookConfig struct {
	Endpoints []WebhookEndpoint `json:"endpoints"`
	// ToleranceSeconds bounds a signature's age (default 300).
	ToleranceSeconds int `json:"tolerance_seconds,omitempty"`
	// Refetch lists the streams whose events are applied with the object
	// read again rather than the event's copy.
	Refetch []string `json:"refetch,omitempty"`
}

// WebhookEndpoint is one signing secret of a pipeline: an endpoint
// registered on the account (ID we_…) or a secret added by hand.
type WebhookEndpoint struct {
	ID         string `json:"id,omitempty"`
	URL        string `json:"url,omitempty"`
	EventTypes int    `json:"event_types,omitempty"`
	// Connect: the endpoint takes connected accounts' events.
	Connect bool      `json:"connect,omitempty"`
	Created time.Time `json:"created"`
	// Hint is the secret redacted (whsec_…abcd).
	Hint string `json:"hint"`
	// Sealed is the secret encrypted with the service's key file.
	Sealed string `json:"sealed"`
}

// ErrNoWebhooks: the pipeline has no signing secret.
var ErrNoWebhooks = errors.New("webhooks are not set up for this pipeline: run stripeline webhooks setup --pipeline NAME --url https://…")

// WebhookConfigOf returns a pipeline's webhook settings (no endpoint when
// none is set up).
func (s *Service) WebhookConfigOf(ctx context.Context, name string) (*WebhookConfig, error) {
	raw, err := s.Setting(ctx, webhookSetting(name))
	if err != nil {
		return nil, err
	}
	c := &WebhookConfig{}
	if raw == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(raw), c); err != nil {
		return nil, fmt.Errorf("the webhook settings of %s are damaged: set them up again (%v)", name, err)
	}
	return c, nil
}

func (s *Service) saveWebhookConfig(ctx context.Context, name string, c *WebhookConfig) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.SetSetting(ctx, webhookSetting(name), string(raw)); err != nil {
		return err
	}
	s.hooks.forget(name)
	return nil
}

// WebhookSetup is what SetupWebhook registers.
type WebhookSetup struct {
	// URL is where Stripe delivers: https://…/webhooks/NAME (http only to
	// this machine, for an emulator).
	URL string
	// Tolerance bounds a signature's age (0: 300 s).
	Tolerance time.Duration
	// Refetch lists streams applied with the object read again.
	Refetch []string
	// Replace drops the secrets kept so far (the end of a rotation).
	Replace bool
}

// SetupWebhook registers a webhook endpoint on the pipeline's account
// (POST /v1/webhook_endpoints) enabled for exactly the event types its
// streams need, and keeps the endpoint's signing secret sealed beside the
// earlier ones, so deliveries signed with either pass while the old
// endpoint is retired.
func (s *Service) SetupWebhook(ctx context.Context, name string, w WebhookSetup) ([]WebhookEndpoint, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := validWebhookURL(w.URL); err != nil {
		return nil, err
	}
	if w.Tolerance < 0 || (w.Tolerance > 0 && w.Tolerance < time.Second) {
		return nil, fieldErr("tolerance", w.Tolerance.String(), "must be at least 1s (0 for Stripe's 300s)")
	}
	if err := s.webhookDest(ctx, rec); err != nil {
		return nil, err
	}
	types, err := engine.EventTypes(rec.p.Streams)
	if err != nil {
		return nil, err
	}
	key, err := s.resolveKey(rec)
	if err != nil {
		return nil, err
	}
	client, err := stripe.New(stripe.Config{Key: key, APIBase: rec.p.Connection.APIBase, Proxy: rec.p.Connection.Proxy,
		Logger: s.log, UserAgent: "stripeline-service"})
	if err != nil {
		return nil, &FieldError{Field: "api_key", Err: err}
	}
	// A connected account's events reach the platform's Connect
	// endpoints (connect=true); the platform's own, its plain ones. A
	// fleet that covers both gets one of each.
	var kinds []bool
	sel := rec.p.Connection.Accounts.Select
	switch {
	case sel.IsZero():
		kinds = []bool{rec.p.Connection.Account != ""}
	case sel.All:
		kinds = []bool{false, true}
	default:
		if sel.Platform {
			kinds = append(kinds, false)
		}
		if len(sel.IDs) > 0 {
			kinds = append(kinds, true)
		}
	}
	var made []WebhookEndpoint
	for _, connect := range kinds {
		form := url.Values{"url": {w.URL}, "enabled_events[]": types, "description": {"stripeline pipeline " + name}}
		if connect {
			form.Set("connect", "true")
		}
		res, err := client.Do(ctx, &stripe.Request{Method: "POST", Path: "/v1/webhook_endpoints", Body: form})
		if err != nil {
			return nil, fmt.Errorf("register the webhook endpoint: %w", err)
		}
		id, secret := gjson.GetBytes(res.Body, "id").Str, webhook.Secret(gjson.GetBytes(res.Body, "secret").Str)
		if id == "" || !strings.HasPrefix(string(secret), "whsec_") {
			return nil, fmt.Errorf("register the webhook endpoint: the answer holds no endpoint id and signing secret")
		}
		ep, err := s.sealWebhook(name, secret)
		if err != nil {
			return nil, err
		}
		ep.ID, ep.URL, ep.EventTypes, ep.Connect = id, w.URL, len(types), connect
		made = append(made, *ep)
	}
	c, err := s.WebhookConfigOf(ctx, name)
	if err != nil {
		return nil, err
	}
	if w.Replace {
		c.Endpoints = nil
	}
	c.Endpoints = append(c.Endpoints, made...)
	c.ToleranceSeconds = int(w.Tolerance / time.Second)
	c.Refetch = w.Refetch
	if err := s.saveWebhookConfig(ctx, name, c); err != nil {
		return nil, err
	}
	return made, nil
}

// AddWebhookSecret keeps one more signing secret for a pipeline (one rolled
// in Stripe's dashboard, or of an endpoint made there).
func (s *Service) AddWebhookSecret(ctx context.Context, name string, secret webhook.Secret) (*WebhookEndpoint, error) {
	if _, err := s.st.pipeline(ctx, name); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(secret), "whsec_") || len(secret) < 16 {
		return nil, fieldErr("secret", "", "is not a webhook signing secret: it starts with whsec_ (Stripe shows it on the endpoint's page)")
	}
	ep, err := s.sealWebhook(name, secret)
	if err != nil {
		return nil, err
	}
	c, err := s.WebhookConfigOf(ctx, name)
	if err != nil {
		return nil, err
	}
	c.Endpoints = append(c.Endpoints, *ep)
	return ep, s.saveWebhookConfig(ctx, name, c)
}

// RemoveWebhookSecret drops the secrets whose hint ends with last4 (the end
// of a rotation) and returns how many it dropped.
func (s *Service) RemoveWebhookSecret(ctx context.Context, name, last4 string) (int, error) {
	c, err := s.WebhookConfigOf(ctx, name)
	if err != nil {
		return 0, err
	}
	kept := c.Endpoints[:0]
	for _, ep := range c.Endpoints {
		if last4 == "" || !strings.HasSuffix(ep.Hint, last4) {
			kept = append(kept, ep)
		}
	}
	n := len(c.Endpoints) - len(kept)
	c.Endpoints = kept
	return n, s.saveWebhookConfig(ctx, name, c)
}

func (s *Service) sealWebhook(name string, secret webhook.Secret) (*WebhookEndpoint, error) {
	k, err := s.keyring()
	if err != nil {
		return nil, err
	}
	sealed, err := k.seal("webhook:"+name, stripe.Secret(secret))
	if err != nil {
		return nil, err
	}
	return &WebhookEndpoint{Hint: secret.String(), Sealed: sealed, Created: s.now()}, nil
}

// validWebhookURL accepts https URLs, and http ones to this machine.
func validWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fieldErr("url", raw, "is not a URL Stripe can deliver to: use https://HOST/webhooks/NAME")
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fieldErr("url", raw, "must use https (Stripe delivers only to https endpoints; http is for an emulator on this machine)")
		}
	}
	return nil
}

// webhookDest checks that the pipeline's destination records applied
// events (engine.NewApplier's condition), before anything is registered.
func (s *Service) webhookDest(ctx context.Context, rec *record) error {
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		return fmt.Errorf("open the destination %s: %w", rec.p.RedactedDest(), err)
	}
	defer d.Close()
	if _, ok := d.(dest.EventLog); !ok {
		return fieldErr("dest", rec.p.RedactedDest(), "cannot take webhooks: a file destination keeps no record of the events it applied, so a duplicate delivery could not be told from a new one; use a SQL destination (sqlite://, postgres://, mysql://)")
	}
	return nil
}

// WebhookDelivery is one delivery to ReceiveWebhook.
type WebhookDelivery struct {
	Body      []byte
	Signature string // the Stripe-Signature header
	Received  time.Time
}

// WebhookResult is what became of a delivery.
type WebhookResult struct {
	EventID string
	Type    string
	Outcome engine.Outcome
}

// ReceiveWebhook verifies and applies one delivery for a pipeline. A
// refusal of the delivery itself wraps one of the webhook.Err… reasons
// (or engine.ErrNotEvent); ErrNotFound or ErrNoWebhooks when there is no
// such pipeline or it has no secret; any other error is the destination's
// or Stripe's, and the delivery is to be retried. When it returns nil the
// event's rows are durable.
func (s *Service) ReceiveWebhook(ctx context.Context, name string, d WebhookDelivery) (*WebhookResult, error) {
	rc, err := s.hooks.get(ctx, s, name)
	if err != nil {
		return nil, err
	}
	id, typ, err := rc.verifier.Verify(d.Body, d.Signature)
	if err != nil {
		return nil, err
	}
	if d.Received.IsZero() {
		d.Received = time.Now()
	}
	a, err := rc.applier(ctx, s.log, gjson.GetBytes(d.Body, "account").Str)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return &WebhookResult{EventID: id, Type: typ, Outcome: engine.OtherAccount}, nil
	}
	out, err := a.Apply(ctx, d.Body, d.Received)
	if err != nil {
		return nil, err
	}
	return &WebhookResult{EventID: id, Type: typ, Outcome: out}, nil
}

// WebhookStatus is what `webhooks status` shows of a pipeline.
type WebhookStatus struct {
	Pipeline  string            `json:"pipeline"`
	Endpoints []WebhookEndpoint `json:"endpoints"`
	Tolerance int               `json:"tolerance_seconds"`
	Refetch   []string          `json:"refetch,omitempty"`
	// Events are the applied events the replica records, by source
	// (webhook, sweep).
	Events []dest.EventStat `json:"events"`
	// Stripe is the endpoints' state on the account, by id (status,
	// enabled events), or the error reading it.
	Stripe map[string]string `json:"stripe,omitempty"`
}

// WebhookStatusOf reports a pipeline's webhook endpoints and the events
// its replica applied, by source.
func (s *Service) WebhookStatusOf(ctx context.Context, name string) (*WebhookStatus, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := s.WebhookConfigOf(ctx, name)
	if err != nil {
		return nil, err
	}
	st := &WebhookStatus{Pipeline: name, Endpoints: c.Endpoints, Tolerance: c.ToleranceSeconds, Refetch: c.Refetch}
	if st.Tolerance == 0 {
		st.Tolerance = int(webhook.DefaultTolerance / time.Second)
	}
	for i := range st.Endpoints {
		st.Endpoints[i].Sealed = ""
	}
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		return nil, fmt.Errorf("open the destination %s: %w", rec.p.RedactedDest(), err)
	}
	defer d.Close()
	if elog, ok := d.(dest.EventLog); ok {
		if st.Events, err = elog.EventStats(ctx, name); err != nil {
			return nil, err
		}
	}
	if key, err := s.resolveKey(rec); err == nil {
		client, err := stripe.New(stripe.Config{Key: key, APIBase: rec.p.Connection.APIBase, Proxy: rec.p.Connection.Proxy, Logger: s.log, UserAgent: "stripeline-service"})
		if err == nil {
			st.Stripe = map[string]string{}
			for _, ep := range c.Endpoints {
				if ep.ID == "" {
					continue
				}
				body, err := client.Get(ctx, "/v1/webhook_endpoints/"+url.PathEscape(ep.ID), nil)
				if err != nil {
					st.Stripe[ep.ID] = "cannot read: " + err.Error()
					continue
				}
				st.Stripe[ep.ID] = gjson.GetBytes(body, "status").Str
			}
		}
	}
	return st, nil
}

// receivers holds each pipeline's verifier and applier while deliveries
// come, rebuilt when the pipeline or its secrets change.
type receivers struct {
	mu sync.Mutex
	m  map[string]*receiver
}

type receiver struct {
	checked  time.Time // when the record was last compared
	checking bool      // a comparison runs in the background
	updated  time.Time // the record's Updated it was built from
	setting  string    // the webhook setting it was built from
	verifier webhook.Verifier
	p        Pipeline
	refetch  []string
	client   engine.Client
	dst      dest.Destination

	mu sync.Mutex
	// appliers by account: one for a pipeline of one account, one per
	// account that sent events for a fleet (each has its own state and
	// record of applied events, fleet.StateKey).
	appliers map[string]*engine.Applier
}

// applier returns the applier of an account's events, or nil when the
// pipeline does not cover that account.
func (rc *receiver) applier(ctx context.Context, log *slog.Logger, account string) (*engine.Applier, error) {
	if !Covers(rc.p, account) {
		return nil, nil
	}
	key := account
	if !rc.p.Fleet() {
		key = rc.p.Connection.Account
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if a := rc.appliers[key]; a != nil {
		return a, nil
	}
	state := rc.p.Name
	if rc.p.Fleet() {
		state = fleet.StateKey(rc.p.Name, key)
	}
	a, err := engine.NewApplier(ctx, engine.ApplyOptions{
		Client: rc.client, Dest: rc.dst, Pipeline: state, Account: key, Streams: rc.p.Streams, Fields: rc.p.Fields,
		Refetch: rc.refetch, Logger: log, TwoWay: rc.p.TwoWay.EngineFields(),
	})
	if err != nil {
		return nil, err
	}
	rc.appliers[key] = a
	return a, nil
}

// recheck is how long a receiver serves before the record is read again.
const recheck = 2 * time.Second

func (h *receivers) get(ctx context.Context, s *Service, name string) (*receiver, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*receiver{}
	}
	rc := h.m[name]
	now := time.Now()
	if rc != nil && now.Sub(rc.checked) < recheck {
		return rc, nil
	}
	if rc != nil {
		// Compare with the store in the background, serving this one
		// meanwhile: deliveries do not wait for the control store.
		if !rc.checking {
			rc.checking = true
			go h.recheck(context.WithoutCancel(ctx), s, name, rc)
		}
		return rc, nil
	}
	return h.load(ctx, s, name, nil)
}

// recheck compares a receiver with the pipeline's record and setting, and
// rebuilds it when either changed, without holding up deliveries.
func (h *receivers) recheck(ctx context.Context, s *Service, name string, rc *receiver) {
	fresh, err := h.build(ctx, s, name, rc)
	h.mu.Lock()
	defer h.mu.Unlock()
	rc.checking = false
	if h.m[name] != rc {
		if fresh != nil && fresh != rc {
			retire(fresh)
		}
		return
	}
	switch {
	case err != nil:
		// The next delivery builds it again, and says why it cannot.
		s.log.Warn("webhooks: reload the pipeline's receiver", "pipeline", name, "error", err.Error())
		delete(h.m, name)
		retire(rc)
	case fresh == rc:
		rc.checked = time.Now()
	default:
		h.m[name] = fresh
		retire(rc)
	}
}

// retire closes a replaced receiver's destination once the deliveries it
// serves have had time to end.
func retire(rc *receiver) { time.AfterFunc(time.Minute, func() { rc.dst.Close() }) }

// load builds a pipeline's receiver; the caller holds h.mu.
func (h *receivers) load(ctx context.Context, s *Service, name string, _ *receiver) (*receiver, error) {
	rc, err := h.build(ctx, s, name, nil)
	if err != nil {
		return nil, err
	}
	h.m[name] = rc
	return rc, nil
}

// build returns old when the pipeline's record and webhook setting are
// still those it was built from, else a new receiver.
func (h *receivers) build(ctx context.Context, s *Service, name string, old *receiver) (*receiver, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	setting, err := s.Setting(ctx, webhookSetting(name))
	if err != nil {
		return nil, err
	}
	if old != nil && old.updated.Equal(rec.p.Updated) && old.setting == setting {
		return old, nil
	}
	rc, err := s.buildReceiver(ctx, rec, setting)
	if err != nil {
		return nil, err
	}
	rc.checked, rc.updated, rc.setting = time.Now(), rec.p.Updated, setting
	return rc, nil
}

func (h *receivers) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rc := h.m[name]; rc != nil {
		delete(h.m, name)
		retire(rc)
	}
}

func (h *receivers) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, rc := range h.m {
		rc.dst.Close()
		delete(h.m, name)
	}
}

func (s *Service) buildReceiver(ctx context.Context, rec *record, setting string) (*receiver, error) {
	name := rec.p.Name
	c := &WebhookConfig{}
	if setting != "" {
		if err := json.Unmarshal([]byte(setting), c); err != nil {
			return nil, fmt.Errorf("the webhook settings of %s are damaged: set them up again (%v)", name, err)
		}
	}
	if len(c.Endpoints) == 0 {
		return nil, ErrNoWebhooks
	}
	k, err := s.keyring()
	if err != nil {
		return nil, err
	}
	v := webhook.Verifier{Tolerance: time.Duration(c.ToleranceSeconds) * time.Second}
	for _, ep := range c.Endpoints {
		secret, err := k.open("webhook:"+name, ep.Sealed)
		if err != nil {
			return nil, fmt.Errorf("the webhook secret %s of %s does not open: set webhooks up again", ep.Hint, name)
		}
		v.Secrets = append(v.Secrets, webhook.Secret(secret.Reveal()))
	}
	var client engine.Client
	if key, err := s.resolveKey(rec); err == nil {
		cfg := stripe.Config{Key: key, APIBase: rec.p.Connection.APIBase, Account: rec.p.Connection.Account, Proxy: rec.p.Connection.Proxy,
			GlobalRPS: rec.p.MaxRPS, EndpointRPS: rec.p.EndpointRPS, Logger: s.log, UserAgent: "stripeline-service"}
		if s.opts.ClientOption != nil {
			s.opts.ClientOption(&cfg)
		}
		if sc, err := stripe.New(cfg); err == nil {
			client = sc
		}
	} else {
		s.log.Warn("webhooks of this pipeline cannot read objects again (thin events, refetch, ties)", "pipeline", name, "error", err.Error())
	}
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		return nil, fmt.Errorf("open the destination %s: %w", rec.p.RedactedDest(), err)
	}
	rc := &receiver{verifier: v, p: rec.p, refetch: c.Refetch, client: client, dst: d, appliers: map[string]*engine.Applier{}}
	if !rec.p.Fleet() {
		// Built now, so a destination that cannot take webhooks says so
		// at the first delivery.
		if _, err := rc.applier(ctx, s.log, rec.p.Connection.Account); err != nil {
			d.Close()
			return nil, err
		}
	}
	return rc, nil
}

// Covers reports whether a pipeline replicates the account an event
// happened on ("" for the platform's own events): the one account of its
// connection, or for a fleet (accounts: …) the accounts it selects.
func Covers(p Pipeline, account string) bool {
	sel := p.Connection.Accounts.Select
	if sel.IsZero() {
		return engine.Covers(p.Connection.Account, account)
	}
	if slices.Contains(sel.Except, account) {
		return false
	}
	if account == fleet.Platform {
		return sel.All || sel.Platform
	}
	return sel.All || slices.Contains(sel.IDs, account)
}
