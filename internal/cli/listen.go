package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/server"
)

func newListenCmd(a *App) *cobra.Command {
	var store, name, addr string
	var public bool
	cmd := &cobra.Command{
		Use:   "listen --pipeline NAME [--addr 127.0.0.1:8090]",
		Short: "Serve a pipeline's webhook endpoint alone (POST /webhooks/NAME), without the full service",
		Long: `listen keeps one pipeline's replica live without "stripeline serve": it serves only
POST /webhooks/NAME, where each delivery is verified against the pipeline's signing secrets
(stripeline webhooks setup) and applied, answering 200 once its rows are durable. Runs (the
events sweep that repairs missed deliveries) are up to "stripeline pipelines run" or a server.
SIGTERM or SIGINT stops it after the deliveries in progress.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needPipeline(name); err != nil {
				return err
			}
			if err := checkListen(addr, public); err != nil {
				return err
			}
			return a.runListen(cmd.Context(), store, name, addr)
		},
	}
	cmd.Flags().StringVar(&store, "store", "", "control store URL (env STRIPELINE_STORE; default "+defaultStore+")")
	cmd.Flags().StringVar(&name, "pipeline", "", "the pipeline whose webhooks to apply (required)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8090", "address to listen on")
	cmd.Flags().BoolVar(&public, "public", false, "allow an --addr beyond loopback (deliveries are still checked by their signature)")
	return cmd
}

func (a *App) runListen(ctx context.Context, store, name, addr string) error {
	svc, err := a.openService(ctx, store, pipeline.Options{})
	if err != nil {
		return err
	}
	defer svc.Close()
	if _, err := svc.WebhookStatusOf(ctx, name); err != nil {
		return a.webhookErr(err)
	}
	if c, err := svc.WebhookConfigOf(ctx, name); err != nil {
		return err
	} else if len(c.Endpoints) == 0 {
		return usage(fmt.Errorf("--pipeline %s: %w", name, pipeline.ErrNoWebhooks))
	}
	mux := http.NewServeMux()
	metrics := server.NewMetrics()
	hook := server.WebhookHandler(svc, metrics, a.Logger())
	// Only this pipeline's deliveries: every other path is a 404.
	mux.HandleFunc("POST /webhooks/{pipeline}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("pipeline") != name {
			http.NotFound(w, r)
			return
		}
		hook.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	a.Logger().Info("listening for webhooks", "url", "http://"+ln.Addr().String()+"/webhooks/"+name, "store", svc.StoreURL())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	return err
}
