package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
)

func TestBenchThroughputCLI(t *testing.T) {
	t.Setenv("STRIPELINE_TEST_POSTGRES", "")
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"bench", "throughput", "--objects", "2000", "--format", "json"}, nil, &stdout, &stderr)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
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
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if out.Machine.CPUs == 0 || len(out.Reports) != 1 {
		t.Fatalf("unexpected output: %s", stdout.String())
	}
	r := out.Reports[0]
	if r.Scenario != "throughput" || r.Dest != "sqlite" || !r.Correct || r.Objects == 0 || r.Rows < r.Objects || r.Requests == 0 || r.ObjectsPerSec <= 0 {
		t.Fatalf("report: %+v", r)
	}
}

func TestBenchUnknownScenarioIsUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli.Run(context.Background(), []string{"bench", "sideways"}, nil, &stdout, &stderr); code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d: %s", code, cli.ExitUsage, stderr.String())
	}
}
