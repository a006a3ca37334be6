package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
)

// TestEmulatorCLIShapes serves the small-streams shape with seven test
// clocks: the clocks are there, and lists the default shape leaves empty
// hold objects.
func TestEmulatorCLIShapes(t *testing.T) {
	t.Parallel()
	base := startEmulatorCLI(t, "--objects", "600", "--test-clocks", "7", "--shape", "small-streams", "--connected-accounts", "0")
	var counts map[string]int
	getJSON(t, base+"/_emulator/counts", &counts)
	if counts["test_helpers_test_clocks"] != 7 {
		t.Errorf("%d test clocks, want 7", counts["test_helpers_test_clocks"])
	}
	for _, s := range []string{"billing_alerts", "issuing_cards", "terminal_readers", "quotes", "treasury_financial_accounts"} {
		if counts[s] == 0 {
			t.Errorf("%s is empty in the small-streams shape", s)
		}
	}
	var kids map[string]int
	getJSON(t, base+"/_emulator/children?stream=invoices_lines", &kids)
	if len(kids) == 0 {
		t.Error("no invoice has lines")
	}
}

func TestEmulatorCLIBadShapeFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--shape", "huge"},
		{"--test-clocks", "-3"},
	} {
		code, _, stderr := run(t, append([]string{"emulator", "--addr", "127.0.0.1:0"}, args...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestBenchSmallStreamsCLI runs the small-streams scenario at a tiny size
// and no latency: every stream replicated, the floor counted per clock.
func TestBenchSmallStreamsCLI(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run(t, "bench", "small-streams", "--small-objects", "300", "--test-clocks", "3",
		"--latency", "1ms", "--rps", "2000", "--endpoint-rps", "2000", "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	var out struct {
		Reports []struct {
			Scenario string `json:"scenario"`
			Correct  bool   `json:"correct"`
			Streams  int    `json:"streams"`
			Floor    struct {
				TestClocks    int   `json:"test_clocks"`
				ClockListings int64 `json:"clock_listings"`
			} `json:"floor"`
			ByEndpoint map[string]int64 `json:"by_endpoint"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(out.Reports) != 1 {
		t.Fatalf("reports: %s", stdout)
	}
	r := out.Reports[0]
	if r.Scenario != "small-streams" || !r.Correct || r.Streams < 90 || r.Floor.TestClocks != 3 || r.Floor.ClockListings != 9 || r.ByEndpoint["GET /v1/customers"] < 4 {
		t.Fatalf("report: %+v", r)
	}
}

func TestBenchAllStreamsExcludesStreams(t *testing.T) {
	t.Parallel()
	code, _, stderr := run(t, "bench", "incremental", "--all-streams", "--streams", "customers")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--all-streams") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
