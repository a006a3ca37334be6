package stripe

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// recoverPerSecond is how fast a lowered global rate climbs back: this
// fraction of the configured rate per second without a 429, so a halved
// rate is whole again after five quiet seconds.
const recoverPerSecond = 0.1

// maxEndpointBuckets bounds the per-endpoint map; paths beyond it (unusual
// ids the normaliser could not recognise) share one bucket.
const maxEndpointBuckets = 4096

// bucket is a token bucket whose rate is halved on 429 storms and recovers
// linearly (AIMD-ish), so a storm does not burn every request's retries.
type bucket struct {
	lim *rate.Limiter

	mu      sync.Mutex
	base    float64 // configured rate
	cur     float64 // rate in force
	cutAt   time.Time
	cutRate float64
}

// newBucket returns a bucket of rps requests per second. The burst is a
// tenth of a second's worth, so no one-second window sees much more than rps.
func newBucket(rps float64) *bucket {
	burst := max(1, int(rps/10))
	return &bucket{lim: rate.NewLimiter(rate.Limit(rps), burst), base: rps, cur: rps}
}

func (b *bucket) rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

// recovered is the rate at now given the last cut; b.mu is held.
func (b *bucket) recovered(now time.Time) float64 {
	if b.cur >= b.base || b.cutAt.IsZero() {
		return b.cur
	}
	r := b.cutRate + b.base*recoverPerSecond*now.Sub(b.cutAt).Seconds()
	return min(max(r, b.cur), b.base)
}

// cut halves the rate after a 429, at most once a second (the 429s of
// requests already in flight belong to the same storm).
func (b *bucket) cut(now time.Time) (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur = b.recovered(now)
	if !b.cutAt.IsZero() && now.Sub(b.cutAt) < time.Second {
		return b.cur, false
	}
	b.cur = max(b.cur/2, b.base/32)
	b.cutAt, b.cutRate = now, b.cur
	b.lim.SetLimitAt(now, rate.Limit(b.cur))
	return b.cur, true
}

// recover raises a lowered rate after a success.
func (b *bucket) recover(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur >= b.base {
		return
	}
	r := b.recovered(now)
	if r >= b.base || r-b.cur >= b.base/100 {
		b.cur = r
		b.lim.SetLimitAt(now, rate.Limit(r))
	}
}

// wait takes one token of the bucket named name, sleeping until it is due.
func (c *Client) wait(ctx context.Context, name string, b *bucket) error {
	now := c.now()
	r := b.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d > 0 {
		if err := c.sleep(ctx, d); err != nil {
			r.CancelAt(c.now())
			return err
		}
	}
	if c.admitted != nil {
		c.admitted(name, now.Add(d))
	}
	return nil
}

// pace waits for the endpoint's bucket, the shared search bucket for search
// endpoints (Stripe limits search as a whole), then the global bucket. The
// narrower buckets come first so a request they hold back does not sit on a
// global token other endpoints could use.
func (c *Client) pace(ctx context.Context, ep string) error {
	if err := c.wait(ctx, ep, c.endpointBucket(ep)); err != nil {
		return err
	}
	if strings.HasSuffix(ep, "/search") {
		if err := c.wait(ctx, "search", c.search); err != nil {
			return err
		}
	}
	return c.wait(ctx, "global", c.global)
}

func (c *Client) endpointBucket(ep string) *bucket {
	c.epMu.Lock()
	defer c.epMu.Unlock()
	b, ok := c.endpoints[ep]
	if ok {
		return b
	}
	if len(c.endpoints) >= maxEndpointBuckets {
		ep = "overflow"
		if b, ok := c.endpoints[ep]; ok {
			return b
		}
	}
	b = newBucket(c.endpointRPS)
	c.endpoints[ep] = b
	return b
}

// EndpointKey names the rate-limit endpoint of a request: the method and the
// path with object ids replaced by {id}, e.g. "GET /v1/invoices/{id}/lines".
// Stripe's resource names are lowercase letters and underscores, so any
// other path segment is taken for an id; search endpoints ("/search") keep
// their own key.
func EndpointKey(method, path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if isIDSegment(s) {
			segs[i] = "{id}"
		}
	}
	return strings.ToUpper(method) + " " + strings.Join(segs, "/")
}

func isIDSegment(s string) bool {
	if s == "" || s == "v1" || s == "v2" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if (ch < 'a' || ch > 'z') && ch != '_' {
			return true
		}
	}
	return false
}
