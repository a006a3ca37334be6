package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// WebhookConfig shapes how the emulator delivers events to the webhook
// endpoints registered on it (POST /v1/webhook_endpoints), as Stripe does:
// at least once, signed, in no guaranteed order, retried on failure. The
// zero value delivers each event once, promptly, retrying a failed
// delivery three times.
type WebhookConfig struct {
	// Duplicates is the share of events delivered twice (0..1).
	Duplicates float64
	// Delay holds every delivery back this long; Jitter adds up to this
	// much more at random, so deliveries arrive out of order.
	Delay, Jitter time.Duration
	// Retries is how often a delivery that got no 2xx is tried again
	// (default 3; negative: never), Backoff the wait before the first
	// retry (default 100ms), doubling.
	Retries int
	Backoff time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// SignedAgo dates every signature this long before the attempt, as a
	// delivery captured and replayed later would be (tests of a
	// receiver's timestamp tolerance).
	SignedAgo time.Duration
	// OnAttempt, when set, is told of every attempt once answered: the
	// HTTP status (0 when none came) and the time from sending it to the
	// answer — for a receiver that answers once its rows are durable,
	// the webhook-to-durable-row latency. Called from the senders.
	OnAttempt func(status int, took time.Duration)
}

// WebhookStats counts the emulator's deliveries.
type WebhookStats struct {
	Delivered int64 `json:"delivered"` // attempts answered 2xx
	Failed    int64 `json:"failed"`    // attempts answered otherwise or not at all
	GaveUp    int64 `json:"gave_up"`   // deliveries that ran out of retries
	Pending   int   `json:"pending"`   // deliveries waiting
	InFlight  int   `json:"in_flight"` // attempts sent, not answered yet
}

// delivery is one event on its way to one endpoint.
type delivery struct {
	url, secret string
	body        []byte
	due         time.Time
	attempt     int
}

// hooks delivers events: a queue ordered by due time and a few senders.
type hooks struct {
	cfg    WebhookConfig
	client *http.Client
	rnd    func() float64

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*delivery
	stopped bool
	stats   WebhookStats
	sending int               // attempts in flight
	once    sync.Once         // starts the senders at the first delivery
	secrets map[string]string // endpoint id → signing secret
	connect map[string]bool   // endpoint id → takes connected accounts' events
	wg      sync.WaitGroup
}

func newHooks(cfg WebhookConfig) *hooks {
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	h := &hooks{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, rnd: rand.Float64, secrets: map[string]string{}, connect: map[string]bool{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// start runs the senders until stop.
func (h *hooks) start(senders int) {
	for range senders {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				d := h.next()
				if d == nil {
					return
				}
				h.send(d)
			}
		}()
	}
}

func (h *hooks) stop() {
	h.mu.Lock()
	h.stopped = true
	h.cond.Broadcast()
	h.mu.Unlock()
	h.wg.Wait()
}

// enqueue schedules a delivery (and maybe its duplicate).
func (h *hooks) enqueue(url, secret string, body []byte) {
	h.once.Do(func() { h.start(4) })
	h.mu.Lock()
	defer h.mu.Unlock()
	copies := 1
	if h.cfg.Duplicates > 0 && h.rnd() < h.cfg.Duplicates {
		copies = 2
	}
	for range copies {
		due := time.Now().Add(h.cfg.Delay)
		if h.cfg.Jitter > 0 {
			due = due.Add(time.Duration(h.rnd() * float64(h.cfg.Jitter)))
		}
		h.push(&delivery{url: url, secret: secret, body: body, due: due})
	}
}

// push adds a delivery in due order; the caller holds h.mu.
func (h *hooks) push(d *delivery) {
	i, _ := slices.BinarySearchFunc(h.queue, d, func(a, b *delivery) int { return a.due.Compare(b.due) })
	h.queue = slices.Insert(h.queue, i, d)
	h.cond.Broadcast()
}

// next waits for the next due delivery, or returns nil once stopped.
func (h *hooks) next() *delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if h.stopped {
			return nil
		}
		if len(h.queue) > 0 {
			if wait := time.Until(h.queue[0].due); wait <= 0 {
				d := h.queue[0]
				h.queue = h.queue[1:]
				h.sending++
				return d
			} else {
				// Wake when it is due (or when something new comes).
				t := time.AfterFunc(wait, func() {
					h.mu.Lock()
					h.cond.Broadcast()
					h.mu.Unlock()
				})
				h.cond.Wait()
				t.Stop()
				continue
			}
		}
		h.cond.Wait()
	}
}

// send makes one attempt, signed as Stripe signs: Stripe-Signature
// t=<unix>,v1=<hex HMAC-SHA256 of "t.body" under the endpoint secret>.
func (h *hooks) send(d *delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	ok, status := false, 0
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
		req.Header.Set("Stripe-Signature", Sign(d.secret, d.body, time.Now().Add(-h.cfg.SignedAgo)))
		res, err := h.client.Do(req)
		if err == nil {
			res.Body.Close()
			status = res.StatusCode
			ok = res.StatusCode/100 == 2
		}
	}
	if h.cfg.OnAttempt != nil {
		h.cfg.OnAttempt(status, time.Since(start))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sending--
	h.cond.Broadcast()
	if ok {
		h.stats.Delivered++
		return
	}
	h.stats.Failed++
	if d.attempt >= h.cfg.Retries || h.cfg.Retries < 0 {
		h.stats.GaveUp++
		return
	}
	d.attempt++
	d.due = time.Now().Add(h.cfg.Backoff << (d.attempt - 1))
	h.push(d)
}

// Sign returns the Stripe-Signature header value of a payload signed with
// secret at time t.
func Sign(secret string, payload []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(payload)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookStats returns the delivery counters.
func (e *Emulator) WebhookStats() WebhookStats {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	s := e.hooks.stats
	s.Pending = len(e.hooks.queue)
	s.InFlight = e.hooks.sending
	return s
}

// WaitWebhooks blocks until no delivery is waiting or in flight (retries
// included: a delivery that keeps failing ends when it runs out of them),
// or ctx ends.
func (e *Emulator) WaitWebhooks(ctx context.Context) error {
	h := e.hooks
	stop := context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.cond.Broadcast()
		h.mu.Unlock()
	})
	defer stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.queue) > 0 || h.sending > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.stopped {
			return nil
		}
		h.cond.Wait()
	}
	return nil
}

// Close stops delivering webhooks. The emulator still answers requests.
func (e *Emulator) Close() error {
	e.hooks.stop()
	return nil
}

// hookSecret returns a new endpoint's signing secret, remembered for its
// deliveries (Stripe shows it only in the create response).
func (e *Emulator) hookSecret(id string, connect bool) string {
	var b [24]byte
	for i := range b {
		b[i] = idAlphabet[e.rnd.IntN(len(idAlphabet))]
	}
	secret := "whsec_" + string(b[:])
	e.hooks.mu.Lock()
	e.hooks.secrets[id] = secret
	e.hooks.connect[id] = connect
	e.hooks.mu.Unlock()
	return secret
}

// loopbackURL reports whether a webhook URL points at this machine: the
// emulator delivers nowhere else.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// deliver queues an event for every enabled endpoint that wants it: the
// account's own endpoints for its events, and the platform's Connect
// endpoints (created with connect=true) for a connected account's. Callers
// hold e.mu.
func (e *Emulator) deliver(a *account, typ string, event []byte) {
	owner := a
	if a.connected {
		if len(e.accounts) == 0 {
			return
		}
		owner = e.accounts[0]
	}
	t := owner.tables["webhook_endpoints"]
	if t == nil {
		return
	}
	for _, rec := range t.recs {
		ep := gjson.ParseBytes(rec.data)
		if ep.Get("status").Str == "disabled" || !wants(ep, typ) {
			continue
		}
		e.hooks.mu.Lock()
		secret, connect := e.hooks.secrets[rec.id], e.hooks.connect[rec.id]
		e.hooks.mu.Unlock()
		if secret == "" || connect != a.connected {
			continue
		}
		e.hooks.enqueue(ep.Get("url").Str, secret, event)
	}
}

// wants reports whether an endpoint is enabled for an event type.
func wants(ep gjson.Result, typ string) bool {
	for _, t := range ep.Get("enabled_events").Array() {
		if t.Str == "*" || t.Str == typ {
			return true
		}
	}
	return false
}

// withoutField returns a JSON object without one top-level field.
func withoutField(obj []byte, field string) []byte {
	res := gjson.ParseBytes(obj)
	if !res.Get(field).Exists() {
		return obj
	}
	out := []byte{'{'}
	first := true
	res.ForEach(func(k, v gjson.Result) bool {
		if k.Str == field {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	return append(out, '}')
}
