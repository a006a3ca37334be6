package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
)

func TestBenchThroughputCLI(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run(t, "bench", "throughput", "--objects", "2000", "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Machine struct {
			CPUs int `json:"cpus"`
		} `json:"machine"`
		Reports []struct {
			Scenario      string  `json:"scenario"`
			Dest          string  `json:"dest"`
			Objects       int64   `json:"objects"`
			Rows          int64   `json:"rows"`
			Requests      int64   `json:"requests"`
			ObjectsPerSec float64 `json:"objects_per_second"`
			Correct       bool    `json:"correct"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if out.Machine.CPUs == 0 || len(out.Reports) != 1 {
		t.Fatalf("unexpected output: %s", stdout)
	}
	r := out.Reports[0]
	if r.Scenario != "throughput" || r.Dest != "sqlite" || !r.Correct || r.Objects == 0 || r.Rows < r.Objects || r.Requests == 0 || r.ObjectsPerSec <= 0 {
		t.Fatalf("report: %+v", r)
	}
}

func TestBenchUnknownScenarioIsUsage(t *testing.T) {
	t.Parallel()
	if code, _, stderr := run(t, "bench", "sideways"); code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d: %s", code, cli.ExitUsage, stderr)
	}
}
