package cli

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTimeLeft(t *testing.T) {
	t.Parallel()
	tests := []struct {
		since         time.Duration
		gained, share float64
		want          time.Duration
		known         bool
	}{
		{10 * time.Second, 0, 0.3, 0, false},
		{0, 0.2, 0.5, 0, false},
		{10 * time.Second, 0.5, 0.5, 10 * time.Second, true},
		{10 * time.Second, 0.25, 0.25, 30 * time.Second, true},
		// A resumed run: 60% was read before, 20% more in 10s.
		{10 * time.Second, 0.2, 0.8, 10 * time.Second, true},
		{time.Minute, 0.5, 1, 0, true},
		{time.Minute, 0, 1, 0, true},
	}
	for _, tt := range tests {
		got, known := timeLeft(tt.since, tt.gained, tt.share)
		if got != tt.want || known != tt.known {
			t.Errorf("timeLeft(%v, %v, %v) = %v, %v; want %v, %v", tt.since, tt.gained, tt.share, got, known, tt.want, tt.known)
		}
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond:                       "<1s",
		42*time.Second + 400*time.Millisecond:        "42s",
		70*time.Second + 10*time.Millisecond:         "1m10s",
		2*time.Hour + 4*time.Minute + 40*time.Second: "2h5m",
	} {
		if got := formatLeft(d); got != want {
			t.Errorf("formatLeft(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for share, want := range map[float64]int{0: 0, 0.42: 42, 0.999: 99, 0.29: 29, 1: 100} {
		if got := percent(share); got != want {
			t.Errorf("percent(%v) = %d, want %d", share, got, want)
		}
	}
}

func TestLineProgress(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	var buf bytes.Buffer
	p := newLineProgress(&buf, clk.now)
	p.Start("customers")
	p.Start("balance_transactions")
	clk.advance(2 * time.Second)
	p.Rows("customers", 500, 5)
	p.Covered("customers", 0.05) // the first report: the pace is measured from here
	// 37% more in 48.1 s: the 58% left take 48.1 × 58/37 ≈ 75.4 s.
	clk.advance(48100 * time.Millisecond)
	p.Rows("customers", 12345, 124)
	p.Covered("customers", 0.42)
	p.Covered("customers", 0.30) // shares only grow
	p.Rows("balance_transactions", 2000, 20)
	clk.advance(5 * time.Second)
	p.Covered("customers", 0.30)
	p.Done("customers", nil)
	p.Done("customers", nil) // one Done per job of the stream
	p.Done("balance_transactions", errors.New("boom"))
	p.Done("balance_transactions", nil)
	want := []string{
		"sync customers: started",
		"sync balance_transactions: started",
		"sync customers: 42% (12,345 rows, ~1m15s left)",
		"sync balance_transactions: 2,000 rows",
		"sync customers: 42% (12,345 rows, ~1m23s left)",
		"sync customers: done, 12,345 rows",
		"sync balance_transactions: failed after 2,000 rows",
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLineProgressResumed: a resumed backfill that starts at 60% estimates
// from its own pace, not as if the 60% had been read in this run.
func TestLineProgressResumed(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	var buf bytes.Buffer
	p := newLineProgress(&buf, clk.now)
	p.Start("charges")
	clk.advance(time.Second)
	p.Covered("charges", 0.6)
	clk.advance(20 * time.Second)
	p.Rows("charges", 4000, 40)
	p.Covered("charges", 0.7)
	if got, want := lastLine(buf.String()), "sync charges: 70% (4,000 rows, ~1m0s left)"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	clk.advance(5 * time.Second)
	p.Covered("charges", 0.999)
	if got, want := lastLine(buf.String()), "sync charges: 99% (4,000 rows, <1s left)"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestBarProgress(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	var buf bytes.Buffer
	p := newBarProgress(&buf, clk.now, mpb.WithAutoRefresh(), mpb.WithWidth(120))
	p.Start("customers")
	p.Start("events")
	clk.advance(10 * time.Second)
	p.Rows("customers", 5000, 50)
	p.Covered("customers", 0.25)
	if got, want := p.line("customers"), "25% (5,000 rows)"; got != want {
		t.Errorf("customers bar = %q, want %q", got, want)
	}
	clk.advance(10 * time.Second)
	p.Rows("customers", 12345, 124)
	p.Covered("customers", 0.5)
	p.Rows("events", 600, 6)
	if got, want := p.line("customers"), "50% (12,345 rows, ~20s left)"; got != want {
		t.Errorf("customers bar = %q, want %q", got, want)
	}
	if got, want := p.line("events"), "600 rows  30 rows/s"; got != want {
		t.Errorf("events bar = %q, want %q", got, want)
	}
	if got := p.bar("customers").Current(); got != 500 {
		t.Errorf("customers bar at %d of 1000, want 500", got)
	}
	// The whole range read, the last batch not yet written: no estimate.
	clk.advance(time.Second)
	p.Covered("customers", 1)
	if got, want := p.line("customers"), "100% (12,345 rows)"; got != want {
		t.Errorf("customers bar = %q, want %q", got, want)
	}
	p.Done("customers", nil)
	p.Done("events", nil)
	p.Wait()
	out := buf.String()
	for _, want := range []string{"customers", "done, 12,345 rows", "events", "done, 600 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("bars lack %q:\n%s", want, out)
		}
	}
}

// TestProgressStreamStartedAgain: a stream started again after it finished
// (a later phase of the run) is followed afresh.
func TestProgressStreamStartedAgain(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	var buf bytes.Buffer
	p := newLineProgress(&buf, clk.now)
	p.Start("customers")
	p.Rows("customers", 100, 1)
	p.Done("customers", nil)
	p.Start("customers")
	clk.advance(10 * time.Second)
	p.Rows("customers", 7, 1)
	p.Done("customers", nil)
	want := "sync customers: started\nsync customers: done, 100 rows\nsync customers: started\nsync customers: 7 rows\nsync customers: done, 7 rows\n"
	if got := buf.String(); got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}

	var bars bytes.Buffer
	b := newBarProgress(&bars, clk.now, mpb.WithAutoRefresh(), mpb.WithWidth(120))
	b.Start("customers")
	b.Done("customers", nil)
	b.Start("customers")
	b.Rows("customers", 7, 1)
	if got, want := b.line("customers"), "7 rows"; got != want {
		t.Errorf("bar after a restart = %q, want %q", got, want)
	}
	b.Done("customers", nil)
	b.Wait()
}
