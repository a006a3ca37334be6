package cli

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/bench"
)

func newBenchCmd(a *App) *cobra.Command {
	var (
		cfg  bench.Config
		prof profiles
	)
	cmd := &cobra.Command{
		Use:   "bench [backfill|small-streams|throughput|memory|incremental]...",
		Short: "Run the benchmark scenarios against the emulator and check the replica",
		Long: `bench measures stripeline against the emulator (DESIGN §6) and checks that
every replica equals the emulated account (exit 1 otherwise):

  backfill       300ms per request, 100 req/s global and 25 req/s per endpoint:
                 wall time, requests, 429s, and the ratio to the floor
                 max(Σ minimum requests ÷ 100, requests of the busiest
                     endpoint ÷ 25, the longest chain of requests that must
                     follow one another × 300ms)
  small-streams  the same backfill of every stream of an account of ~70 small
                 streams with --test-clocks test clocks (--small-objects
                 objects; its own emulator unless --api-base is given)
  throughput     zero latency, no limits: objects/s into SQLite (and PostgreSQL
                 with --dest postgres://… or STRIPELINE_TEST_POSTGRES)
  memory         peak RSS of a child 'stripeline sync' process doing the backfill
  incremental    --changes changes after a backfill, then an incremental sync:
                 the requests it cost, per endpoint (and per stream and why
                 when the engine reports it)

--all-streams syncs every stream (the default selection of 'stripeline sync')
instead of the usual billing streams. Without --api-base the emulator runs in
this process with --objects objects.`,
		Example: `  stripeline bench backfill --objects 1000000
  stripeline bench small-streams --test-clocks 210
  stripeline bench incremental --all-streams --objects 100000 --changes 1000
  stripeline bench throughput --objects 200000 --format json
  stripeline bench --objects 100000 --dest postgres://postgres@127.0.0.1:5432/test`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkBench(&cfg, args, cmd.Flags().Changed("streams")); err != nil {
				return err
			}
			cfg.APIBase = a.APIBase
			cfg.Dest = a.localURL(cfg.Dest)
			if cfg.Postgres == "" {
				cfg.Postgres = a.getenv("STRIPELINE_TEST_POSTGRES")
			}
			cfg.Log = a.Stderr
			stop, err := a.startProfiles(prof)
			if err != nil {
				return err
			}
			reports, err := bench.Run(cmd.Context(), cfg, args...)
			stop()
			a.printBench(reports)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			return nil
		},
	}
	cmd.AddCommand(newBenchFleetCmd(a), newBenchWebhooksCmd(a))
	f := cmd.Flags()
	f.IntVar(&cfg.Objects, "objects", 1_000_000, "approximate objects in the emulated account")
	f.Int64Var(&cfg.Seed, "seed", 42, "seed of the emulated account")
	f.StringSliceVar(&cfg.Streams, "streams", nil, "streams to sync (default: the usual billing streams, see docs/BENCHMARKS.md)")
	f.BoolVar(&cfg.AllStreams, "all-streams", false, "sync every stream, as 'stripeline sync' does without --streams")
	f.IntVar(&cfg.SmallObjects, "small-objects", 1500, "small-streams: approximate objects of the core billing streams")
	f.IntVar(&cfg.TestClocks, "test-clocks", 210, "small-streams: test clocks in the account")
	f.StringVar(&cfg.Dest, "dest", "", "destination URL (default: a SQLite file in a temporary directory; postgres:// gets a fresh schema)")
	f.DurationVar(&cfg.Latency, "latency", 300*time.Millisecond, "backfill: emulator latency per request")
	f.Float64Var(&cfg.RPS, "rps", 100, "backfill: emulator global rate limit")
	f.Float64Var(&cfg.EndpointRPS, "endpoint-rps", 25, "backfill: emulator per-endpoint rate limit")
	f.Float64Var(&cfg.ClientRPS, "client-rps", 0, "backfill: client global rate (default --rps)")
	f.Float64Var(&cfg.ClientEndpointRPS, "client-endpoint-rps", 0, "backfill: client per-endpoint rate (default --endpoint-rps)")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "requests in flight (default: rate × latency for backfill, the engine's default otherwise)")
	f.IntVar(&cfg.PerStream, "per-stream", 0, "requests in flight per stream (default: endpoint rate × latency for backfill)")
	f.IntVar(&cfg.Changes, "changes", 10_000, "incremental: changes made before the incremental sync (creates, updates, deletes)")
	f.StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile of this process to FILE")
	f.StringVar(&prof.mem, "memprofile", "", "write an allocation profile of this process to FILE")
	f.StringVar(&prof.block, "blockprofile", "", "write a profile of where this process's goroutines waited to FILE")
	f.StringVar(&prof.trace, "trace", "", "write an execution trace of this process to FILE (go tool trace)")
	return cmd
}

// checkBench refuses unknown scenarios and bad sizes; no test clocks is
// bench.Config's -1.
func checkBench(cfg *bench.Config, scenarios []string, streamsGiven bool) error {
	for _, s := range scenarios {
		if !slices.Contains(bench.Scenarios, s) {
			return usagef("unknown scenario %q: use %s", s, strings.Join(bench.Scenarios, ", "))
		}
	}
	switch {
	case cfg.Objects <= 0:
		return usagef("--objects must be positive, got %d", cfg.Objects)
	case cfg.SmallObjects <= 0:
		return usagef("--small-objects must be positive, got %d", cfg.SmallObjects)
	case cfg.TestClocks < 0:
		return usagef("--test-clocks must be 0 or more, got %d", cfg.TestClocks)
	case cfg.AllStreams && streamsGiven:
		return usagef("--all-streams and --streams exclude each other: choose one")
	}
	if cfg.TestClocks == 0 {
		cfg.TestClocks = -1 // none
	}
	return nil
}

// benchTop is how many endpoints or streams a report lists.
const benchTop = 15

// printEndpoints lists the endpoints that took the most requests, with the
// floor's count beside them when there is one.
func (a *App) printEndpoints(got, floor map[string]int64) {
	if len(got) == 0 {
		return
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if got[keys[i]] != got[keys[j]] {
			return got[keys[i]] > got[keys[j]]
		}
		return keys[i] < keys[j]
	})
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	if floor != nil {
		fmt.Fprintln(tw, "  ENDPOINT\tREQUESTS\tFLOOR\t")
	} else {
		fmt.Fprintln(tw, "  ENDPOINT\tREQUESTS\t")
	}
	for i, k := range keys {
		if i == benchTop {
			fmt.Fprintf(tw, "  … %d more endpoints\t\t\n", len(keys)-benchTop)
			break
		}
		if floor != nil {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t\n", k, got[k], floor[k])
		} else {
			fmt.Fprintf(tw, "  %s\t%d\t\n", k, got[k])
		}
	}
	tw.Flush()
}

// printByStream lists the streams that took the most requests, and why.
func (a *App) printByStream(by map[string]map[string]int64) {
	if len(by) == 0 {
		return
	}
	total := func(m map[string]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	names := make([]string, 0, len(by))
	for k := range by {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if ti, tj := total(by[names[i]]), total(by[names[j]]); ti != tj {
			return ti > tj
		}
		return names[i] < names[j]
	})
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STREAM\tREQUESTS\tWHY\t")
	for i, n := range names {
		if i == benchTop {
			fmt.Fprintf(tw, "  … %d more streams\t\t\t\n", len(names)-benchTop)
			break
		}
		whys := make([]string, 0, len(by[n]))
		for w, c := range by[n] {
			whys = append(whys, fmt.Sprintf("%s %d", w, c))
		}
		sort.Strings(whys)
		fmt.Fprintf(tw, "  %s\t%d\t%s\t\n", n, total(by[n]), strings.Join(whys, ", "))
	}
	tw.Flush()
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
			fmt.Fprintf(a.Stdout, "%s floor %.1fs: %d requests (busiest endpoint %s: %d; longest sequential chain %s: %d); %d test clocks, %d per-clock listings; %d streams checked; concurrency %d, per stream %d, client in flight: mean %.1f, peak %d\n",
				r.Scenario, r.Floor.Seconds, r.Floor.Pages, r.Floor.Endpoint, r.Floor.EndpointPages, r.Floor.Sequential, r.Floor.SequentialPages,
				r.Floor.TestClocks, r.Floor.ClockListings, r.Streams, r.Concurrency, r.PerStream, r.InFlightMean, r.InFlightPeak)
			a.printEndpoints(r.ByEndpoint, r.Floor.ByEndpoint)
		}
		if r.Changes > 0 {
			fmt.Fprintf(a.Stdout, "incremental: %d changes, %d events applied, %d requests over %d streams\n", r.Changes, r.EventsApplied, r.Requests, r.Streams)
			a.printEndpoints(r.ByEndpoint, nil)
			a.printByStream(r.ByStream)
		}
		if r.Error != "" {
			fmt.Fprintf(a.Stdout, "%s (%s): %.500s\n", r.Scenario, r.Dest, r.Error)
		}
	}
	fmt.Fprintf(a.Stdout, "machine: %d CPUs, %s, %s, %s\n", m.CPUs, m.CPUModel, m.GoVersion, m.Date)
}
