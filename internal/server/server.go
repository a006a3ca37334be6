// Package server is the pipelines service's HTTP face (DESIGN §8): the REST
// API under /api/v1 with its OpenAPI document, the web UI embedded in the
// binary, /metrics in Prometheus's format and /healthz. Handlers are thin:
// they decode, call internal/pipeline and encode; classify is the one place
// that maps error kinds to status codes and safe messages.
//
// Every route but /healthz, /metrics (from loopback), /login and the static
// assets needs the server's token: API clients send it as a bearer token,
// the UI trades it for a session cookie and carries a CSRF token in its
// forms.
package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// maxBody bounds request bodies (a pipeline's settings are a few kB).
const maxBody = 1 << 20

// Options configure a Server.
type Options struct {
	// Service is the pipelines service every handler calls.
	Service *pipeline.Service
	// Tokens keeps the token's hash; default the Service's control store.
	Tokens TokenStore
	// Metrics receive the runs the Service works (give Metrics.ObserveRun
	// to pipeline.Options.OnRunEnd); default a fresh set.
	Metrics *Metrics
	// Logger receives the server's log; default discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Public says the server listens beyond loopback: /metrics then needs
	// the token from clients that are not on this machine.
	Public bool
	// Version is shown in the UI's footer and by /healthz.
	Version string
}

// Server is the HTTP face of a pipelines service. Build it with New and
// serve Handler (or call Serve). It is safe for concurrent use.
type Server struct {
	opts     Options
	svc      *pipeline.Service
	store    string
	tokens   TokenStore
	pages    map[string]*template.Template
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	metrics  *Metrics
	idPrefix string
	mux      *http.ServeMux
	handler  http.Handler
	// routes are the patterns registered on mux, for the OpenAPI check.
	routes []string
	// streams ends the live streams (log follows) when the server shuts
	// down, so a graceful shutdown does not wait for them.
	streams context.Context
	stop    context.CancelFunc
}

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Service == nil {
		return nil, errors.New("server: Options.Service is required")
	}
	if opts.Tokens == nil {
		opts.Tokens = ServiceTokens(opts.Service)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts: opts, svc: opts.Service, store: opts.Service.StoreURL(), tokens: opts.Tokens,
		log: opts.Logger, now: opts.Now, metrics: opts.Metrics,
		sessions: newSessions(opts.Now),
		idPrefix: strconv.FormatInt(opts.Now().Unix()%100000, 36) + "-",
		mux:      http.NewServeMux(),
	}
	pages, err := s.parseTemplates()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	if err := s.metrics.watch(s.svc.List, opts.Now, opts.Logger); err != nil {
		return nil, err
	}
	s.streams, s.stop = context.WithCancel(context.Background())
	s.routesInit()
	s.handler = chain(s.mux, s.withRequestID, s.withRecovery, s.withLogging, withSecurityHeaders, withCrossOrigin)
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics are the server's metrics, for the service to report runs to.
func (s *Server) Metrics() *Metrics { return s.metrics }

// handle registers a route (a ServeMux pattern with its method).
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

func (s *Server) handleFunc(pattern string, h http.HandlerFunc) { s.handle(pattern, h) }

// Serve serves on ln until ctx ends, then shuts down: live streams end at
// once, other requests get up to grace to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.stop)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.stop()
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("shut the http server down: %w", err)
	}
	return nil
}

// healthz says the server is up and its control store answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.tokens.TokenHash(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the control store does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

// serveMetrics serves /metrics: to anyone on loopback, and with the token
// to others when the server is public.
func (s *Server) serveMetrics() http.Handler {
	h := s.metrics.handler()
	guarded := s.requireAPI(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Public && !fromLoopback(r) {
			guarded.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mergeDone returns a context that ends with ctx or with other.
func mergeDone(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}
