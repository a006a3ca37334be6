package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
)

// runMemory backfills in a child process (`stripeline sync`), so the
// emulator's memory is not counted, at zero latency and without rate
// limits (pages arrive as fast as they can be written: the queues are at
// their fullest), and reports the child's peak RSS.
func runMemory(ctx context.Context, cfg Config, up upstream) ([]Report, error) {
	if err := up.SetFaults(0, 0, 0); err != nil {
		return nil, err
	}
	r := Report{Scenario: Memory}
	fail := func(err error) ([]Report, error) {
		r.Error = err.Error()
		return []Report{r}, err
	}
	t, err := openTarget(cfg.Dest, Memory)
	if err != nil {
		return nil, err
	}
	defer t.cleanup()
	r.Dest = t.label
	dir, err := os.MkdirTemp("", "stripeline-bench-child-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	args := []string{"sync", "--api-base", up.URL(), "--dest", t.url,
		"--max-rps", strconv.Itoa(unlimited), "--endpoint-rps", strconv.Itoa(unlimited), "--format", "json", "--log-level", "warn"}
	if streams := cfg.syncStreams(); len(streams) > 0 {
		args = append(args, "--streams", strings.Join(streams, ","))
	}
	if cfg.Concurrency > 0 {
		args = append(args, "--concurrency", strconv.Itoa(cfg.Concurrency))
	}
	cmd := cfg.Command(args...)
	cmd.Dir = dir
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, "STRIPE_API_KEY=sk_test_bench", "STRIPELINE_CONFIG=", "STRIPE_API_BASE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before, err := up.Stats()
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	var hwm float64
	err = cmd.Start()
	if err == nil {
		// The child's own high-water mark (VmHWM, reset at exec), polled while
		// it runs: rusage's maxrss of a child forked from this process can
		// report this process's size instead.
		done, polled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(polled)
			tk := time.NewTicker(20 * time.Millisecond)
			defer tk.Stop()
			for {
				if kb := vmHWM(cmd.Process.Pid); kb > 0 {
					hwm = max(hwm, kb/1024)
				}
				select {
				case <-done:
					return
				case <-tk.C:
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		<-polled
	}
	r.Seconds = time.Since(start).Seconds()
	if after, serr := up.Stats(); serr == nil {
		r.Requests = after.Requests - before.Requests
		r.RateLimited = after.RateLimited - before.RateLimited
	}
	r.PeakRSSMB = hwm
	if ps := cmd.ProcessState; hwm == 0 && ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSSMB = float64(ru.Maxrss) / 1024 // Linux reports KiB
		}
	}
	if err != nil {
		return fail(fmt.Errorf("child sync: %w: %s", err, lastLines(stderr.String(), 5)))
	}
	var res engine.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return fail(fmt.Errorf("child sync output: %w", err))
	}
	r.Objects = objects(up, cfg.selection())
	r.Rows = rows(&res)
	if r.Seconds > 0 {
		r.ObjectsPerSec = float64(r.Rows) / r.Seconds
	}
	dst, err := dest.Open(ctx, t.url)
	if err != nil {
		return fail(err)
	}
	defer dst.Close()
	if err := check(ctx, up, dst, cfg.selection()); err != nil {
		return fail(err)
	}
	r.Correct = true
	return []Report{r}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// vmHWM reads a process's peak resident set size in KiB from /proc, or 0.
func vmHWM(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}
