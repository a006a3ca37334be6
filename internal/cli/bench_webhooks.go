package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/bench"
)

func newBenchWebhooksCmd(a *App) *cobra.Command {
	var cfg bench.WebhookConfig
	cmd := &cobra.Command{
		Use:   "webhooks [--rate 200] [--duration 20s] [--dest URL]",
		Short: "Webhook-to-durable-row latency (p50, p99) and sustained events/s into a replica",
		Long: `bench webhooks syncs the customers of an emulated account into the replica (--dest: a
SQLite file in a temporary directory by default; postgres://… gets a fresh schema), registers
the pipeline's webhook endpoint, served as serve serves it on 127.0.0.1, then changes --rate
customers a second for --duration. The emulator delivers each change as a signed webhook and
times it from sending to the 200 the endpoint answers once the rows are durable. It reports
the latency's p50, p90, p99 and maximum, the events applied per second, and checks that the
replica equals the account.`,
		Example: `  stripeline bench webhooks --rate 200 --duration 20s
  stripeline bench webhooks --rate 200 --dest postgres://postgres@127.0.0.1:5432/test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Rate <= 0 || cfg.Rate > 5000 {
				return usagef("--rate must be above 0 and at most 5000 changes a second, got %g", cfg.Rate)
			}
			if cfg.Duration <= 0 || cfg.Duration > 10*time.Minute {
				return usagef("--duration must be above 0 and at most 10m, got %s", cfg.Duration)
			}
			cfg.Dest = a.localURL(cfg.Dest)
			cfg.Log = a.Stderr
			rep, err := bench.RunWebhooks(cmd.Context(), cfg)
			if rep != nil {
				if a.Format == "json" {
					if perr := a.printJSON(rep); perr != nil {
						return perr
					}
				} else {
					fmt.Fprintf(a.Stdout, "dest %s · %.0f changes/s for %s · %d CPUs %s\n", rep.Dest, rep.Rate, cfg.Duration, rep.Machine.CPUs, rep.Machine.CPUModel)
					fmt.Fprintf(a.Stdout, "changes %d  applied %d  failed attempts %d  sustained %.1f events/s\n", rep.Changes, rep.Applied, rep.Failed, rep.EventsPerSecond)
					fmt.Fprintf(a.Stdout, "webhook to durable row: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", rep.P50Millis, rep.P90Millis, rep.P99Millis, rep.MaxMillis)
					fmt.Fprintf(a.Stdout, "replica equals the account: %v\n", rep.ReplicaOK)
				}
			}
			if err != nil {
				return fmt.Errorf("bench webhooks: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&cfg.Rate, "rate", 200, "changes (events, deliveries) per second")
	f.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long changes are made")
	f.StringVar(&cfg.Dest, "dest", "", "replica URL (default: a SQLite file in a temporary directory; postgres:// gets a fresh schema)")
	f.IntVar(&cfg.Objects, "objects", 2000, "approximate objects in the emulated account")
	f.Int64Var(&cfg.Seed, "seed", 42, "seed of the emulated account")
	return cmd
}
