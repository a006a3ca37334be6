package cli

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// profiles are bench's profile files ("" for none). Profiling is the
// process's, not the invocation's: only a bench given these flags turns
// it on.
type profiles struct {
	cpu, mem, block, trace string
}

// startProfiles starts the CPU profile, the block profile's sampling and
// the execution trace that p asks for; stop ends them and writes the block
// and allocation profiles.
func (a *App) startProfiles(p profiles) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if p.cpu != "" {
		f, err := os.Create(a.path(p.cpu))
		if err != nil {
			return stop, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("--cpuprofile: %w", err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if p.block != "" {
		runtime.SetBlockProfileRate(1)
		stops = append(stops, func() {
			a.writeProfile("block", p.block)
			runtime.SetBlockProfileRate(0)
		})
	}
	if p.trace != "" {
		f, err := os.Create(a.path(p.trace))
		if err != nil {
			stop()
			return func() {}, fmt.Errorf("--trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return func() {}, fmt.Errorf("--trace: %w", err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	if p.mem != "" {
		stops = append(stops, func() { a.writeProfile("allocs", p.mem) })
	}
	return stop, nil
}

// writeProfile writes the named runtime profile to path, best effort: a
// profile that cannot be written does not fail the benchmark.
func (a *App) writeProfile(name, path string) {
	if f, err := os.Create(a.path(path)); err == nil {
		_ = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
}
