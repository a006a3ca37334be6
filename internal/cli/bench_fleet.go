package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/bench"
)

func newBenchFleetCmd(a *App) *cobra.Command {
	var cfg bench.FleetConfig
	cmd := &cobra.Command{
		Use:   "fleet --store postgres://…",
		Short: "A platform's connected accounts synced by one fleet pipeline on 1, 2, 4 worker processes",
		Long: `bench fleet starts the emulator with --accounts accounts (the platform and its
connected accounts) of about --objects objects each, every account with a rate
limit of its own (--account-rps) and --latency per request, and for each
--workers count starts that many 'stripeline serve --worker' processes on a fresh
PostgreSQL control store, runs one pipeline of every account (accounts: all)
into a fresh PostgreSQL replica, and reports the wall time, the requests, the
429s and the jobs each worker ended, then runs it again with nothing changed
(the incremental cost), and checks every account's rows.`,
		Example: `  stripeline bench fleet --store postgres://postgres@127.0.0.1:5432/test
  stripeline bench fleet --store postgres://postgres@127.0.0.1:5432/test --accounts 50 --objects 500 --workers 1,2,4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Store == "" {
				cfg.Store = a.getenv("STRIPELINE_TEST_POSTGRES")
			}
			if !strings.HasPrefix(cfg.Store, "postgres://") && !strings.HasPrefix(cfg.Store, "postgresql://") {
				return usagef("--store: the fleet scenario's workers share a PostgreSQL control store: give --store postgres://… (or set STRIPELINE_TEST_POSTGRES)")
			}
			for _, w := range cfg.Workers {
				if w < 1 {
					return usagef("--workers %d: measure at least 1 worker process", w)
				}
			}
			if cfg.Accounts < 1 || cfg.Objects < 1 {
				return usagef("--accounts and --objects must be positive, got %d and %d", cfg.Accounts, cfg.Objects)
			}
			cfg.Log = a.Stderr
			reports, err := bench.RunFleet(cmd.Context(), cfg)
			a.printFleetBench(reports)
			if err != nil {
				return fmt.Errorf("bench fleet: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", "", "PostgreSQL URL: each measurement gets a fresh schema for its store and one for its replica (default STRIPELINE_TEST_POSTGRES)")
	f.IntVar(&cfg.Accounts, "accounts", 200, "accounts of the platform, itself included")
	f.IntVar(&cfg.Objects, "objects", 2000, "approximate objects per account")
	f.Int64Var(&cfg.Seed, "seed", 42, "seed of the accounts")
	f.DurationVar(&cfg.Latency, "latency", 300*time.Millisecond, "emulator latency per request")
	f.Float64Var(&cfg.AccountRPS, "account-rps", 25, "emulator rate limit of each account")
	f.Float64Var(&cfg.ClientRPS, "client-rps", 0, "each account's pacer (default 80% of --account-rps)")
	f.Float64Var(&cfg.PlatformRPS, "platform-rps", 0, "the fleet's platform-wide cap, shared through the store (0: none)")
	f.IntSliceVar(&cfg.Workers, "workers", []int{1, 2, 4}, "worker process counts to measure")
	f.IntVar(&cfg.Slots, "slots", 4, "account jobs one worker process works at once (serve --workers)")
	f.IntVar(&cfg.Concurrency, "concurrency", 8, "requests in flight of each account job")
	f.StringSliceVar(&cfg.Streams, "streams", nil, "streams to sync (default: the usual billing streams)")
	return cmd
}

func (a *App) printFleetBench(reports []bench.FleetReport) {
	m := bench.ThisMachine()
	if a.Format == "json" {
		if reports == nil {
			reports = []bench.FleetReport{}
		}
		_ = a.printJSON(struct {
			Machine bench.Machine       `json:"machine"`
			Reports []bench.FleetReport `json:"reports"`
		}{m, reports})
		return
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WORKERS\tSLOTS\tACCOUNTS\tOBJECTS/ACCT\tROWS\tSECONDS\tREQUESTS\tREQ/S\t429S\tINCR S\tINCR REQUESTS\tJOBS PER WORKER\tCORRECT\t")
	for _, r := range reports {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%.1f\t%d\t%.1f\t%d\t%.1f\t%d\t%v\t%v\t\n", r.Workers, r.Slots, r.Accounts, r.Objects, r.Rows, r.Seconds, r.Requests, r.RequestsPerSec, r.RateLimited, r.IncrementalSeconds, r.IncrementalRequests, r.JobsPerWorker, r.Correct)
	}
	tw.Flush()
	for _, r := range reports {
		if r.Error != "" {
			fmt.Fprintf(a.Stdout, "fleet with %d workers: %.500s\n", r.Workers, r.Error)
		}
	}
	fmt.Fprintf(a.Stdout, "machine: %d CPUs, %s, %s, %s\n", m.CPUs, m.CPUModel, m.GoVersion, m.Date)
}
