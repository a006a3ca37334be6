package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/webhook"
)

// webhookMetrics count deliveries by pipeline and outcome and time their
// application.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec
	seconds    *prometheus.HistogramVec
}

func newWebhookMetrics(reg prometheus.Registerer) *webhookMetrics {
	m := &webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripeline_webhook_deliveries_total",
			Help: "Webhook deliveries received, by pipeline and outcome: applied, duplicate, ignored, other_account, refused (bad or missing signature, stale, oversized, malformed; reason label), unknown (no such pipeline or no secret) and failed (the destination or Stripe failed: answered 5xx)."},
			[]string{"pipeline", "outcome", "reason"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stripeline_webhook_apply_seconds",
			Help:    "Time from a delivery's arrival to its answer, rows durable, for applied deliveries.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"pipeline"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.seconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
			switch ex := are.ExistingCollector.(type) {
			case *prometheus.CounterVec:
				m.deliveries = ex
			case *prometheus.HistogramVec:
				m.seconds = ex
			}
		}
	}
	return m
}

// WebhookHandler serves POST /webhooks/{pipeline} alone: the endpoint of
// `serve` and of `stripeline listen`. No token: the Stripe signature is the
// authentication, checked against the pipeline's secrets before anything
// is read or written, and nothing but the delivery's application is
// reachable through it. Answers: 200 once the event's rows are durable (or
// it was a duplicate, or for no selected stream or another account), 400
// with a short reason for a delivery that is refused, 404 for a pipeline
// without webhooks, 500 when the destination or Stripe failed, so that
// Stripe retries.
func WebhookHandler(svc *pipeline.Service, metrics *Metrics, log *slog.Logger) http.Handler {
	if metrics == nil {
		metrics = NewMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newWebhookMetrics(metrics.reg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		name := r.PathValue("pipeline")
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				err = webhook.ErrTooLarge
			}
			answer(w, m, log, name, nil, err)
			return
		}
		res, err := svc.ReceiveWebhook(r.Context(), name, pipeline.WebhookDelivery{Body: body, Signature: r.Header.Get("Stripe-Signature"), Received: received})
		if err == nil {
			m.seconds.WithLabelValues(name).Observe(time.Since(received).Seconds())
		}
		answer(w, m, log, name, res, err)
	})
}

// answer maps a delivery's outcome to its answer and counts it.
func answer(w http.ResponseWriter, m *webhookMetrics, log *slog.Logger, name string, res *pipeline.WebhookResult, err error) {
	var reason error
	for _, e := range []error{webhook.ErrNotSigned, webhook.ErrBadHeader, webhook.ErrBadSignature, webhook.ErrStale,
		webhook.ErrTooLarge, webhook.ErrNotEvent, engine.ErrNotEvent} {
		if errors.Is(err, e) {
			reason = e
			break
		}
	}
	switch {
	case err == nil:
		m.deliveries.WithLabelValues(name, string(res.Outcome), "").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"event": res.EventID, "outcome": string(res.Outcome)})
	case reason != nil:
		if errors.Is(reason, engine.ErrNotEvent) {
			reason = webhook.ErrNotEvent
		}
		m.deliveries.WithLabelValues(name, "refused", reason.Error()).Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": reason.Error()})
	case errors.Is(err, pipeline.ErrNotFound), errors.Is(err, pipeline.ErrNoWebhooks):
		// No label per unknown name: anyone can send these.
		m.deliveries.WithLabelValues("", "unknown", "").Inc()
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no pipeline of this name takes webhooks"})
	default:
		m.deliveries.WithLabelValues(name, "failed", "").Inc()
		log.Error("webhook delivery not applied; Stripe retries it", "pipeline", name, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the delivery could not be applied now; retry"})
	}
}
