package emulator

import (
	"net/http"
	"time"
)

// latency holds the request for its configured latency, or until the
// client gives up on it.
func (e *Emulator) latency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := exchangeOf(r).knobs.latency; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		next.ServeHTTP(w, r)
	})
}
