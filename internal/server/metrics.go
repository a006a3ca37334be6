package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// Metrics are the service's Prometheus metrics: counters of the runs this
// process worked (ObserveRun, given to pipeline.Options.OnRunEnd), and
// gauges of every pipeline read from the control store when scraped. Its
// methods are safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.CounterVec
	rows        *prometheus.CounterVec
	requests    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	duration    *prometheus.HistogramVec
}

// pipelineCollector reads every pipeline's state at scrape time.
type pipelineCollector struct {
	list  func(context.Context) ([]*pipeline.Pipeline, error)
	now   func() time.Time
	log   *slog.Logger
	state *prometheus.Desc
	last  *prometheus.Desc
	lag   *prometheus.Desc
	up    *prometheus.Desc
}

// NewMetrics registers the service's metrics (and Go's and the process's)
// in a registry of their own. The server adds the pipelines' gauges.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripeline_runs_total",
			Help: "Run attempts this process finished, by pipeline and status (succeeded, failed, retrying, cancelled, skipped)."},
			[]string{"pipeline", "status"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripeline_rows_written_total",
			Help: "Rows written to destinations by the runs this process worked."}, []string{"pipeline"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripeline_stripe_requests_total",
			Help: "Requests sent to Stripe by the runs this process worked."}, []string{"pipeline"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripeline_stripe_rate_limited_total",
			Help: "429 (rate limited) answers Stripe gave the runs this process worked."}, []string{"pipeline"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stripeline_run_duration_seconds",
			Help:    "Duration of the run attempts this process finished.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400}}, []string{"pipeline"}),
	}
	m.reg.MustRegister(m.runs, m.rows, m.requests, m.rateLimited, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch adds the gauges of every pipeline, read with list when scraped.
func (m *Metrics) watch(list func(context.Context) ([]*pipeline.Pipeline, error), now func() time.Time, log *slog.Logger) error {
	pc := &pipelineCollector{
		list: list, now: now, log: log,
		state: prometheus.NewDesc("stripeline_pipeline_state", "1 for the state each pipeline is in (pending, active, running, paused, failing).", []string{"pipeline", "state"}, nil),
		last:  prometheus.NewDesc("stripeline_pipeline_last_success_timestamp_seconds", "When each pipeline's last successful run finished (unix seconds); absent before the first.", []string{"pipeline"}, nil),
		lag:   prometheus.NewDesc("stripeline_pipeline_lag_seconds", "Seconds since each pipeline's last successful run finished; absent before the first.", []string{"pipeline"}, nil),
		up:    prometheus.NewDesc("stripeline_control_store_up", "1 when the control store answered this scrape.", nil, nil),
	}
	if err := m.reg.Register(pc); err != nil {
		return fmt.Errorf("register the pipelines' metrics: %w", err)
	}
	return nil
}

// ObserveRun counts one ended run attempt (succeeded, failed, retrying,
// skipped or cancelled). It is safe to call from any goroutine.
func (m *Metrics) ObserveRun(r *pipeline.Run) {
	m.runs.WithLabelValues(r.Pipeline, string(r.Status)).Inc()
	m.rows.WithLabelValues(r.Pipeline).Add(float64(r.Rows))
	m.requests.WithLabelValues(r.Pipeline).Add(float64(r.Requests))
	m.rateLimited.WithLabelValues(r.Pipeline).Add(float64(r.RateLimited))
	if !r.Started.IsZero() && !r.Finished.IsZero() {
		m.duration.WithLabelValues(r.Pipeline).Observe(r.Finished.Sub(r.Started).Seconds())
	}
}

// Forget drops a deleted pipeline's series.
func (m *Metrics) Forget(pipeline string) {
	for _, v := range []*prometheus.CounterVec{m.runs, m.rows, m.requests, m.rateLimited} {
		v.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
	}
	m.duration.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
}

// handler serves the registry in Prometheus's text format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (c *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.last
	ch <- c.lag
	ch <- c.up
}

var pipelineStates = []pipeline.State{pipeline.StatePending, pipeline.StateActive, pipeline.StateRunning, pipeline.StatePaused, pipeline.StateFailing}

func (c *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := c.list(ctx)
	if err != nil {
		c.log.Warn("metrics: read the pipelines", "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	now := c.now()
	for _, p := range ps {
		for _, st := range pipelineStates {
			v := 0.0
			if st == p.Status.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, p.Name, string(st))
		}
		last := p.Status.LastSuccess
		if last.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(last.UnixNano())/1e9, p.Name)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, now.Sub(last).Seconds(), p.Name)
	}
}
