package stripe

import (
	"context"
	"time"
)

// SetClock replaces the client's clock, sleep and jitter for tests.
func SetClock(c *Client, now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func() float64) {
	c.now, c.sleep, c.jitter = now, sleep, jitter
	c.global.lim.SetLimitAt(now(), c.global.lim.Limit())
}

// SetAdmitted installs the pacing observer.
func SetAdmitted(c *Client, f func(bucket string, at time.Time)) { c.admitted = f }
