package bench_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/bench"
	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/cli"
)

// childEnv makes the test binary act as `stripeline` for the memory
// scenario's child process.
const childEnv = "STRIPELINE_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(cli.Run(context.Background(), cli.ProcessEnv()))
	}
	os.Exit(m.Run())
}

func smallConfig(t *testing.T) bench.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bench.Config{
		Objects: 3000, Seed: 5, Latency: 2 * time.Millisecond, Changes: 500,
		SmallObjects: 300, TestClocks: 4,
		Command: func(args ...string) *exec.Cmd {
			cmd := exec.Command(exe, args...)
			cmd.Env = append(os.Environ(), childEnv+"=1")
			return cmd
		},
	}
}

func TestDefaultStreamsAreInTheCatalog(t *testing.T) {
	for _, s := range bench.DefaultStreams {
		if _, ok := catalog.Lookup(s); !ok {
			t.Errorf("stream %s is not in the catalog", s)
		}
	}
}

func TestScenariosReplicateTheAccount(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Postgres = os.Getenv("STRIPELINE_TEST_POSTGRES")
	reports, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range reports {
		seen[r.Scenario] = true
		if !r.Correct || r.Error != "" {
			t.Errorf("%s/%s: correct=%v error=%q", r.Scenario, r.Dest, r.Correct, r.Error)
		}
		if r.Objects == 0 || r.Rows == 0 || r.Seconds <= 0 || r.Requests == 0 || r.ObjectsPerSec <= 0 {
			t.Errorf("%s/%s: report lacks figures: %+v", r.Scenario, r.Dest, r)
		}
		switch r.Scenario {
		case bench.Backfill, bench.SmallStreams:
			if r.Floor == nil || r.Floor.Pages == 0 || r.Floor.Seconds <= 0 || r.FloorRatio <= 0 || r.Floor.Endpoint == "" {
				t.Errorf("backfill report lacks the floor: %+v", r.Floor)
			}
			if r.Scenario == bench.SmallStreams && (r.Floor.TestClocks != 4 || r.Floor.ClockListings != 12 || r.Streams < 90) {
				t.Errorf("small-streams: %d test clocks, %d per-clock listings, %d streams checked; want 4, 12 (customers, subscriptions, quotes) and every stream",
					r.Floor.TestClocks, r.Floor.ClockListings, r.Streams)
			}
		case bench.Memory:
			if r.PeakRSSMB <= 0 {
				t.Errorf("memory report lacks the peak RSS")
			}
		case bench.Incremental:
			if r.Changes == 0 || r.EventsApplied == 0 {
				t.Errorf("incremental report lacks changes or events: %+v", r)
			}
		}
	}
	for _, s := range bench.Scenarios {
		if !seen[s] {
			t.Errorf("scenario %s did not report", s)
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	if _, err := bench.Run(context.Background(), bench.Config{Objects: 10}, "nope"); err == nil {
		t.Fatal("an unknown scenario ran")
	}
}

// TestIncrementalAllStreams runs the incremental scenario over every stream
// with a few changes, children included: the replica must equal the
// account, and the report must say what the run cost per endpoint.
func TestIncrementalAllStreams(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Objects, cfg.Changes, cfg.AllStreams = 1500, 40, true
	reports, err := bench.Run(context.Background(), cfg, bench.Incremental)
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	r := reports[0]
	if !r.Correct || r.Changes != 40 || r.EventsApplied == 0 || r.Streams < 90 || len(r.ByEndpoint) == 0 {
		t.Fatalf("report: %+v", r)
	}
	var sum int64
	for _, n := range r.ByEndpoint {
		sum += n
	}
	if sum != r.Requests {
		t.Errorf("requests by endpoint add up to %d, total %d", sum, r.Requests)
	}
}
