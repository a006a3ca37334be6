package emulator

import "net/http"

// Stats counts what the emulator answered since the last ResetStats.
type Stats struct {
	Requests        int64            `json:"requests"`
	RateLimited     int64            `json:"rate_limited"`
	ServerErrors    int64            `json:"server_errors"`
	Dropped         int64            `json:"dropped"`
	PeakConcurrency int64            `json:"peak_concurrency"`
	ByEndpoint      map[string]int64 `json:"by_endpoint"`
}

// stats counts the request, in total and by endpoint, and the requests in
// flight at once; it routes the request, since the endpoint is the route's.
// The answers' statuses are counted where they are written (write).
func (e *Emulator) stats(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		n := e.inflight.Add(1)
		defer e.inflight.Add(-1)
		for {
			p := e.peak.Load()
			if n <= p || e.peak.CompareAndSwap(p, n) {
				break
			}
		}
		c := exchangeOf(r)
		c.tg = e.route(r.Method, r.URL.Path)
		e.statsMu.Lock()
		e.byEndpoint[c.tg.endpoint]++
		e.statsMu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// Stats returns the counters since the last ResetStats.
func (e *Emulator) Stats() Stats {
	e.statsMu.Lock()
	by := make(map[string]int64, len(e.byEndpoint))
	for k, v := range e.byEndpoint {
		by[k] = v
	}
	e.statsMu.Unlock()
	return Stats{
		Requests:        e.requests.Load(),
		RateLimited:     e.rateLimited.Load(),
		ServerErrors:    e.serverErrors.Load(),
		Dropped:         e.dropped.Load(),
		PeakConcurrency: e.peak.Load(),
		ByEndpoint:      by,
	}
}

// ResetStats zeroes the counters.
func (e *Emulator) ResetStats() {
	e.requests.Store(0)
	e.rateLimited.Store(0)
	e.serverErrors.Store(0)
	e.dropped.Store(0)
	e.peak.Store(e.inflight.Load())
	e.statsMu.Lock()
	e.byEndpoint = map[string]int64{}
	e.statsMu.Unlock()
}
