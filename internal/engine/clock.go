package engine

import "time"

// Clock is the engine's one source of time: run and row stamps, the
// reconciliation's age, elapsed times, and the writer's flush ticker. The
// zero Options use the wall clock; tests inject a fake one so time-based
// behaviour runs without sleeps.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that fires every d until stopped.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a Clock's ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// WallClock is the system clock.
var WallClock Clock = wallClock{}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) NewTicker(d time.Duration) Ticker { return wallTicker{time.NewTicker(d)} }

type wallTicker struct{ t *time.Ticker }

func (t wallTicker) C() <-chan time.Time { return t.t.C }
func (t wallTicker) Stop()               { t.t.Stop() }

// now is the run's current time.
func (r *runner) now() time.Time { return r.opts.Clock.Now() }

// since is the time elapsed since t on the run's clock.
func (r *runner) since(t time.Time) time.Duration { return r.opts.Clock.Now().Sub(t) }
