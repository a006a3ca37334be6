package server

import (
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func TestNiceScale(t *testing.T) {
	for _, c := range []struct {
		top       int64
		max, step float64
	}{
		{0, 4, 1}, {1, 1, 1}, {7, 8, 2}, {24, 30, 10}, {100, 100, 50}, {1234, 1500, 500}, {98000, 100000, 50000},
	} {
		if m, s := niceScale(c.top); m != c.max || s != c.step {
			t.Errorf("niceScale(%d) = %v, %v; want %v, %v", c.top, m, s, c.max, c.step)
		}
	}
}

func TestRowsPlotDrawsFinishedRunsOldestFirst(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	runs := []*pipeline.Run{ // newest first, as the store lists them
		{ID: 3, Status: pipeline.RunRunning, Started: t0.Add(2 * time.Hour)},
		{ID: 2, Status: pipeline.RunFailed, Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour), Rows: 10},
		{ID: 1, Status: pipeline.RunSucceeded, Started: t0, Finished: t0, Rows: 1200},
	}
	svg := string(rowsPlot(runs))
	if n := strings.Count(svg, "<rect"); n != 2 {
		t.Fatalf("%d bars, want 2 (the running run has none):\n%s", n, svg)
	}
	first, second := strings.Index(svg, "Run #1 · 1,200 rows · succeeded"), strings.Index(svg, "Run #2 · 10 rows · failed")
	if first < 0 || second < 0 || first > second {
		t.Fatalf("tooltips missing or out of order:\n%s", svg)
	}
	if !strings.Contains(svg, `class="bar-failed"`) || !strings.Contains(svg, ">1.5k<") || !strings.Contains(svg, "Mar 1 12:00") {
		t.Fatalf("plot lacks a failed bar, the 1.5k tick or a date:\n%s", svg)
	}
	if empty := string(rowsPlot(nil)); !strings.Contains(empty, "No finished runs yet") {
		t.Fatalf("empty plot: %s", empty)
	}
}
