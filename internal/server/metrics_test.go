package server_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// metric returns the value of the sample whose name and labels are series.
func metric(t *testing.T, text, series string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}

func TestMetricsCountRunsAndTellLag(t *testing.T) {
	f := newFixture(t, fixtureOpts{public: true})
	f.create("acme")
	f.create("idle")
	run := f.runAndWait("acme")
	text := string(f.do("GET", "/metrics", "", nil).Body)
	for series, want := range map[string]float64{
		`stripeline_runs_total{pipeline="acme",status="succeeded"}`:           1,
		`stripeline_rows_written_total{pipeline="acme"}`:                      float64(run.Rows),
		`stripeline_stripe_requests_total{pipeline="acme"}`:                   float64(run.Requests),
		`stripeline_stripe_rate_limited_total{pipeline="acme"}`:               0,
		`stripeline_run_duration_seconds_count{pipeline="acme"}`:              1,
		`stripeline_pipeline_state{pipeline="acme",state="active"}`:           1,
		`stripeline_pipeline_state{pipeline="acme",state="pending"}`:          0,
		`stripeline_pipeline_state{pipeline="idle",state="pending"}`:          1,
		`stripeline_pipeline_last_success_timestamp_seconds{pipeline="acme"}`: float64(run.Finished.UnixNano()) / 1e9,
		`stripeline_control_store_up`:                                         1,
	} {
		got, ok := metric(t, text, series)
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if lag, ok := metric(t, text, `stripeline_pipeline_lag_seconds{pipeline="acme"}`); !ok || lag < 0 {
		t.Errorf("lag of acme = %v (present %v)", lag, ok)
	}
	if _, ok := metric(t, text, `stripeline_pipeline_lag_seconds{pipeline="idle"}`); ok {
		t.Error("a pipeline that never succeeded has a lag")
	}
	if strings.Contains(text, "fixture4242") {
		t.Error("the metrics show the API key")
	}

	// Served publicly, /metrics wants the token from other machines.
	remote := func(auth string) int {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = "192.0.2.10:40000"
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if c := remote(""); c != http.StatusUnauthorized {
		t.Errorf("remote scrape without the token: %d", c)
	}
	if c := remote(f.token); c != http.StatusOK {
		t.Errorf("remote scrape with the token: %d", c)
	}

	// A deleted pipeline's series go.
	f.api("DELETE", "/api/v1/pipelines/acme?tables=keep", nil, http.StatusOK)
	text = string(f.do("GET", "/metrics", "", nil).Body)
	if strings.Contains(text, `pipeline="acme"`) {
		t.Error("the deleted pipeline still has series")
	}
}
