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
	tests := []struct {
		elapsed time.Duration
		share   float64
		want    time.Duration
		known   bool
	}{
		{10 * time.Second, 0, 0, false},
		{0, 0.5, 0, false},
		{10 * time.Second, 0.5, 10 * time.Second, true},
		{10 * time.Second, 0.25, 30 * time.Second, true},
		{30 * time.Second, 0.75, 10 * time.Second, true},
		{time.Minute, 1, 0, true},
		{time.Minute, 1.5, 0, true},
	}
	for _, tt := range tests {
		got, known := timeLeft(tt.elapsed, tt.share)
		if got != tt.want || known != tt.known {
			t.Errorf("timeLeft(%v, %v) = %v, %v; want %v, %v", tt.elapsed, tt.share, got, known, tt.want, tt.known)
		}
	}
}

func TestFormatting(t *testing.T) {
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
	clk := newTestClock()
	var buf bytes.Buffer
	p := newLineProgress(&buf, clk.now)
	p.Start("customers")
	p.Start("balance_transactions")
	clk.advance(2 * time.Second)
	p.Rows("customers", 500, 5)
	p.Covered("customers", 0.05)
	// 50.7 s for 42%: 50.7 × 58/42 ≈ 70 s to go.
	clk.advance(48700 * time.Millisecond)
	p.Rows("customers", 12345, 124)
	p.Covered("customers", 0.42)
	p.Covered("customers", 0.30) // shares only grow
	p.Rows("balance_transactions", 2000, 20)
	clk.advance(5 * time.Second)
	p.Covered("customers", 0.30)
	p.Done("customers", nil)
	p.Done("balance_transactions", errors.New("boom"))
	want := []string{
		"sync customers: started",
		"sync balance_transactions: started",
		"sync customers: 42% (12,345 rows, ~1m10s left)",
		"sync balance_transactions: 2,000 rows",
		"sync customers: 42% (12,345 rows, ~1m17s left)",
		"sync customers: done, 12,345 rows",
		"sync balance_transactions: failed after 2,000 rows",
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBarProgress(t *testing.T) {
	clk := newTestClock()
	var buf bytes.Buffer
	p := newBarProgress(&buf, clk.now, mpb.WithAutoRefresh(), mpb.WithWidth(120))
	p.Start("customers")
	p.Start("events")
	clk.advance(10 * time.Second)
	p.Rows("customers", 12345, 124)
	p.Covered("customers", 0.25)
	p.Rows("events", 300, 3)
	if got, want := p.line("customers"), "25% (12,345 rows, ~30s left)"; got != want {
		t.Errorf("customers bar = %q, want %q", got, want)
	}
	if got, want := p.line("events"), "300 rows  30 rows/s"; got != want {
		t.Errorf("events bar = %q, want %q", got, want)
	}
	if got := p.bar("customers").Current(); got != 250 {
		t.Errorf("customers bar at %d of 1000, want 250", got)
	}
	p.Done("customers", nil)
	p.Done("events", nil)
	p.Wait()
	out := buf.String()
	for _, want := range []string{"customers", "done, 12,345 rows", "events", "done, 300 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("bars lack %q:\n%s", want, out)
		}
	}
}
