package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
)

// TestEmulatorCLIShapes serves the small-streams shape with seven test
// clocks: the clocks are there, and lists the default shape leaves empty
// hold objects.
func TestEmulatorCLIShapes(t *testing.T) {
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
	for _, args := range [][]string{
		{"--shape", "huge"},
		{"--test-clocks", "-3"},
	} {
		var stdout, stderr bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"emulator", "--addr", "127.0.0.1:0"}, args...), strings.NewReader(""), &stdout, &stderr)
		if code != cli.ExitUsage || !strings.Contains(stderr.String(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}

// TestBenchSmallStreamsCLI runs the small-streams scenario at a tiny size
// and no latency: every stream replicated, the floor counted per clock.
func TestBenchSmallStreamsCLI(t *testing.T) {
	t.Setenv("STRIPELINE_TEST_POSTGRES", "")
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"bench", "small-streams", "--small-objects", "300", "--test-clocks", "3",
		"--latency", "1ms", "--rps", "2000", "--endpoint-rps", "2000", "--format", "json"}, nil, &stdout, &stderr)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
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
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(out.Reports) != 1 {
		t.Fatalf("reports: %s", stdout.String())
	}
	r := out.Reports[0]
	if r.Scenario != "small-streams" || !r.Correct || r.Streams < 90 || r.Floor.TestClocks != 3 || r.Floor.ClockListings != 9 || r.ByEndpoint["GET /v1/customers"] < 4 {
		t.Fatalf("report: %+v", r)
	}
}

func TestBenchAllStreamsExcludesStreams(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"bench", "incremental", "--all-streams", "--streams", "customers"}, nil, &stdout, &stderr)
	if code != cli.ExitUsage || !strings.Contains(stderr.String(), "--all-streams") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
