package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/bench"
)

func init() { register(newBenchCmd) }

func newBenchCmd(a *App) *cobra.Command {
	var (
		cfg        bench.Config
		cpuProfile string
		memProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench [backfill|throughput|memory|incremental]...",
		Short: "Run the benchmark scenarios against the emulator and check the replica",
		Long: `bench measures stripeline against the emulator (DESIGN §6) and checks that
every replica equals the emulated account (exit 1 otherwise):

  backfill     300ms per request, 100 req/s global and 25 req/s per endpoint:
               wall time, requests, 429s, and the ratio to the floor
               max(Σ pages ÷ 100, pages of the busiest endpoint ÷ 25,
                   pages of the longest list without a created filter × 300ms)
  throughput   zero latency, no limits: objects/s into SQLite (and PostgreSQL
               with --dest postgres://… or STRIPELINE_TEST_POSTGRES)
  memory       peak RSS of a child 'stripeline sync' process doing the backfill
  incremental  --changes changes after a backfill, then an incremental sync

Without --api-base the emulator runs in this process with --objects objects.`,
		Example: `  stripeline bench backfill --objects 1000000
  stripeline bench throughput --objects 200000 --format json
  stripeline bench --objects 100000 --dest postgres://postgres@127.0.0.1:5432/test`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range args {
				known := false
				for _, k := range bench.Scenarios {
					known = known || s == k
				}
				if !known {
					return usagef("unknown scenario %q: use backfill, throughput, memory or incremental", s)
				}
			}
			if cfg.Objects <= 0 {
				return usagef("--objects must be positive, got %d", cfg.Objects)
			}
			cfg.APIBase = a.APIBase
			if cfg.Postgres == "" {
				cfg.Postgres = os.Getenv("STRIPELINE_TEST_POSTGRES")
			}
			cfg.Log = a.Stderr
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			reports, err := bench.Run(cmd.Context(), cfg, args...)
			if memProfile != "" {
				if f, ferr := os.Create(memProfile); ferr == nil {
					_ = pprof.Lookup("allocs").WriteTo(f, 0)
					f.Close()
				}
			}
			a.printBench(reports)
			if err != nil {
				if errors.Is(err, bench.ErrIncorrect) {
					return fmt.Errorf("bench: %w", err)
				}
				return fmt.Errorf("bench: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Objects, "objects", 1_000_000, "approximate objects in the emulated account")
	f.Int64Var(&cfg.Seed, "seed", 42, "seed of the emulated account")
	f.StringSliceVar(&cfg.Streams, "streams", nil, "streams to sync (default: the usual billing streams, see docs/BENCHMARKS.md)")
	f.StringVar(&cfg.Dest, "dest", "", "destination URL (default: a SQLite file in a temporary directory; postgres:// gets a fresh schema)")
	f.DurationVar(&cfg.Latency, "latency", 300*time.Millisecond, "backfill: emulator latency per request")
	f.Float64Var(&cfg.RPS, "rps", 100, "backfill: emulator global rate limit")
	f.Float64Var(&cfg.EndpointRPS, "endpoint-rps", 25, "backfill: emulator per-endpoint rate limit")
	f.Float64Var(&cfg.ClientRPS, "client-rps", 0, "backfill: client global rate (default --rps)")
	f.Float64Var(&cfg.ClientEndpointRPS, "client-endpoint-rps", 0, "backfill: client per-endpoint rate (default --endpoint-rps)")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "requests in flight (default: rate × latency for backfill, the engine's default otherwise)")
	f.IntVar(&cfg.PerStream, "per-stream", 0, "requests in flight per stream (default: endpoint rate × latency for backfill)")
	f.IntVar(&cfg.Changes, "changes", 10_000, "incremental: changes made before the incremental sync")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process to FILE")
	f.StringVar(&memProfile, "memprofile", "", "write an allocation profile of this process to FILE")
	return cmd
}

type benchOutput struct {
	Machine bench.Machine  `json:"machine"`
	Reports []bench.Report `json:"reports"`
}

func (a *App) printBench(reports []bench.Report) {
	m := bench.ThisMachine()
	if a.Format == "json" {
		if reports == nil {
			reports = []bench.Report{}
		}
		_ = a.printJSON(benchOutput{Machine: m, Reports: reports})
		return
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SCENARIO\tDEST\tOBJECTS\tROWS\tSECONDS\tREQUESTS\t429S\tOBJECTS/S\tFLOOR S\tRATIO\tPEAK RSS MB\tCORRECT\t")
	for _, r := range reports {
		floor, ratio, rss := "-", "-", "-"
		if r.Floor != nil {
			floor = fmt.Sprintf("%.1f", r.Floor.Seconds)
			ratio = fmt.Sprintf("%.3f", r.FloorRatio)
		}
		if r.PeakRSSMB > 0 {
			rss = fmt.Sprintf("%.0f", r.PeakRSSMB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%d\t%d\t%.0f\t%s\t%s\t%s\t%v\t\n",
			r.Scenario, r.Dest, r.Objects, r.Rows, r.Seconds, r.Requests, r.RateLimited, r.ObjectsPerSec, floor, ratio, rss, r.Correct)
	}
	tw.Flush()
	for _, r := range reports {
		if r.Floor != nil {
			fmt.Fprintf(a.Stdout, "backfill floor %.1fs: %d pages (busiest endpoint %s: %d pages; longest sequential list %s: %d pages); concurrency %d, per stream %d, client peak in flight %d\n",
				r.Floor.Seconds, r.Floor.Pages, r.Floor.Endpoint, r.Floor.EndpointPages, r.Floor.Sequential, r.Floor.SequentialPages, r.Concurrency, r.PerStream, r.InFlightPeak)
		}
		if r.Changes > 0 {
			fmt.Fprintf(a.Stdout, "incremental: %d changes, %d events applied, %d requests\n", r.Changes, r.EventsApplied, r.Requests)
		}
		if r.Error != "" {
			fmt.Fprintf(a.Stdout, "%s (%s): %.500s\n", r.Scenario, r.Dest, r.Error)
		}
	}
	fmt.Fprintf(a.Stdout, "machine: %d CPUs, %s, %s, %s\n", m.CPUs, m.CPUModel, m.GoVersion, m.Date)
}
