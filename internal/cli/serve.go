package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/server"
)

type serveFlags struct {
	addr    string
	store   string
	public  bool
	workers int
	grace   time.Duration
	rescue  time.Duration
	worker  bool
}

func newServeCmd(a *App) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the pipelines service: schedules and runs, the REST API, the web UI and /metrics",
		Long: `serve runs the pipelines of the control store on their schedules (River workers), and
serves the REST API (/api/v1, described at /api/v1/openapi.json), the web UI (/), /metrics
and /healthz.

It listens on loopback (127.0.0.1:8080) unless --public. The API and the UI need the server's
token: serve makes one at its first start on a store and prints it once; stripeline serve token
makes a new one (the old one and its UI sessions stop working). With --public, /metrics needs
the token too, except from this machine.

SIGTERM or SIGINT shuts it down gracefully: running syncs get --grace to finish, then stop at
their last checkpoint and resume there at the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runServe(cmd.Context(), f, cmd.Flags().Changed("addr"))
		},
	}
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (config server.addr)")
	cmd.PersistentFlags().StringVar(&f.store, "store", "", "control store: sqlite://PATH or postgres://… (env STRIPELINE_STORE; default "+defaultStore+")")
	cmd.Flags().BoolVar(&f.public, "public", false, "allow an --addr beyond loopback (the token is still required)")
	cmd.Flags().IntVar(&f.workers, "workers", 2, "runs worked at once by this process")
	cmd.Flags().DurationVar(&f.grace, "grace", 30*time.Second, "on shutdown, how long running syncs may go on before they stop at their checkpoint")
	cmd.Flags().BoolVar(&f.worker, "worker", false, "work runs (and fleet accounts' jobs) and schedules only, with no HTTP listener: start several on one --store postgres://… to share the work")
	cmd.Flags().DurationVar(&f.rescue, "rescue-after", 6*time.Hour, "one attempt of a run lasts at most this long (a longer run goes on in the next attempt, from its checkpoint); a run whose server died is run again this long after its attempt started")
	cmd.AddCommand(newServeTokenCmd(a, f))
	return cmd
}

func newServeTokenCmd(a *App, f *serveFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "Make a new server token (printed once); the old token and its UI sessions stop working",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, err := a.openService(ctx, f.store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			tok, err := server.RotateToken(ctx, server.ServiceTokens(svc))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "%s\n", tok)
			fmt.Fprintf(a.Stderr, "stripeline: a new server token for %s is printed above, once; the old one no longer works\n", svc.StoreURL())
			return nil
		},
	}
}

// checkListen refuses an address beyond loopback without --public.
func checkListen(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--addr %q is not host:port, e.g. 127.0.0.1:8080", addr)
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--addr %q listens beyond this machine: use a loopback address such as 127.0.0.1:8080, or add --public to mean it (the token is still required)", addr)
}

func (a *App) runServe(ctx context.Context, f *serveFlags, addrSet bool) error {
	if !addrSet && a.cfg.Server.Addr != "" {
		f.addr = a.cfg.Server.Addr
	}
	if err := checkListen(f.addr, f.public); err != nil {
		return err
	}
	if f.workers < 1 {
		return usagef("--workers %d: a server works at least 1 run at a time", f.workers)
	}
	if f.grace < 0 {
		return usagef("--grace %s: give a duration of 0 or more, e.g. 30s", f.grace)
	}
	if f.worker {
		return a.runWorker(ctx, f)
	}
	metrics := server.NewMetrics()
	svc, err := a.openService(ctx, f.store, pipeline.Options{Work: true, Schedules: true, Workers: f.workers, RescueAfter: f.rescue, OnRunEnd: metrics.ObserveRun})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := a.applyConfigPipelines(ctx, svc); err != nil {
		return err
	}
	srv, err := server.New(server.Options{Service: svc, Metrics: metrics, Logger: a.Logger(), Public: f.public, Version: Version})
	if err != nil {
		return err
	}
	if err := a.serverToken(ctx, svc); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	// River hard-stops when its start context ends: the shutdown below
	// stops it gracefully instead.
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return a.pipelineErr(err)
	}
	a.Logger().Info("serving", "url", "http://"+ln.Addr().String()+"/", "store", svc.StoreURL(), "workers", f.workers)
	serveErr := srv.Serve(ctx, ln, 10*time.Second)
	a.Logger().Info("shutting down: running syncs finish or stop at their checkpoint", "grace", f.grace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.grace)
	defer cancel()
	stopErr := svc.Stop(sctx)
	return errors.Join(serveErr, stopErr)
}

// serverToken makes the token at the first start on a store and prints it
// once; a token in the config file (server.token) is used instead.
func (a *App) serverToken(ctx context.Context, svc *pipeline.Service) error {
	tokens := server.ServiceTokens(svc)
	if tok := a.cfg.Server.Token; tok != "" {
		if len(tok) < 24 || strings.ContainsAny(tok, " \t\n") {
			return usagef("config server.token is too short to guard the API: use at least 24 characters without spaces (or leave it out, and serve makes one)")
		}
		return server.SetToken(ctx, tokens, tok)
	}
	tok, err := server.EnsureToken(ctx, tokens)
	if err != nil || tok == "" {
		return err
	}
	fmt.Fprintf(a.Stdout, "The server's token (shown once; stripeline serve token makes a new one):\n\n    %s\n\n", tok)
	fmt.Fprintf(a.Stdout, "Log in to the UI with it; API clients send it as Authorization: Bearer <token>.\n")
	return nil
}
