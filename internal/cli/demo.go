package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// demoKey is the test key the demo uses against its own emulator.
const demoKey = "sk_test_stripelinedemo"

// demoQuery is the sample question the demo answers from the replica.
const demoQuery = `SELECT strftime('%Y-%m', created, 'unixepoch') AS month,
       count(*) AS charges,
       printf('%.2f', sum(amount - amount_refunded) / 100.0) AS net_revenue
FROM charges
WHERE status = 'succeeded' AND _stripeline_deleted = 0
GROUP BY month ORDER BY month DESC LIMIT 12`

func newDemoCmd(a *App) *cobra.Command {
	var (
		db      string
		objects int
		seed    int64
		keep    bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Sync a seeded emulator account into ./stripeline-demo.db and query it (no key, no network)",
		Long: `demo starts the embedded Stripe emulator on 127.0.0.1 with a seeded account,
syncs every stream into a SQLite replica, prints the summary, and answers a sample
SQL question (net revenue by month) from the replica.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd.Context(), db, objects, seed, keep)
		},
	}
	cmd.Flags().StringVar(&db, "db", "stripeline-demo.db", "SQLite file to write")
	cmd.Flags().IntVar(&objects, "objects", 30000, "objects in the seeded account")
	cmd.Flags().Int64Var(&seed, "seed", 42, "seed of the generated account")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep an existing replica and sync incrementally into it")
	return cmd
}

func (a *App) runDemo(ctx context.Context, db string, objects int, seed int64, keep bool) error {
	if objects <= 0 {
		return usagef("--objects must be positive, got %d", objects)
	}
	begin := a.now()
	emu, err := emulator.New(emulator.Config{Seed: seed, Objects: objects})
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(a.Stderr, "emulator: %d objects (seed %d) at %s, ready in %.1fs\n", objects, seed, base, time.Since(begin).Seconds())

	if !keep {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Remove(a.path(db) + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove the old demo replica: %w", err)
			}
		}
	}
	client, err := stripe.New(stripe.Config{Key: stripe.Secret(demoKey), APIBase: base, GlobalRPS: 1e6, EndpointRPS: 1e6, Logger: a.Logger()})
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(a.path(db))
	if err != nil {
		return fmt.Errorf("--db %s: %w", db, err)
	}
	dst, err := dest.Open(ctx, "sqlite://"+abs)
	if err != nil {
		return err
	}
	defer dst.Close()
	res, err := a.syncWithProgress(ctx, engine.Options{Client: client, Dest: dst, Pipeline: "demo", Concurrency: 8, Logger: a.Logger()})
	if res != nil {
		a.printSyncResult(res, client.Stats().Requests)
	}
	if err != nil {
		return err
	}
	q, ok := dst.(dest.Querier)
	if !ok {
		return nil
	}
	cols, rows, err := q.Query(ctx, demoQuery)
	if err != nil {
		return fmt.Errorf("sample query: %w", err)
	}
	fmt.Fprintf(a.Stdout, "\nNet revenue by month (from %s):\n", db)
	if err := writeRows(a.Stdout, "table", cols, rows); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "\nReplica: %s — try: stripeline query \"SELECT count(*) FROM customers\" --dest sqlite://%s\n", db, db)
	fmt.Fprintf(a.Stderr, "demo finished in %.1fs\n", time.Since(begin).Seconds())
	return nil
}
