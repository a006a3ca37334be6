package fleet

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget is the platform-wide cap on requests: every account's client
// waits on it before each request, on top of the account's own pacer.
// Implementations are safe for concurrent use.
type Budget interface {
	// Wait blocks until one request may be sent, or ctx ends.
	Wait(ctx context.Context) error
}

// Unlimited is the Budget of a fleet without a platform cap.
type Unlimited struct{}

// Wait returns at once.
func (Unlimited) Wait(ctx context.Context) error { return ctx.Err() }

// NewLocal caps the requests of this process alone at rps per second (a
// token bucket with a second's worth of burst). Several processes each with
// a local budget together send up to their sum: give each the platform cap
// divided by the processes, or use a shared budget.
func NewLocal(rps float64) Budget {
	if rps <= 0 {
		return Unlimited{}
	}
	return rate.NewLimiter(rate.Limit(rps), max(1, int(rps)))
}

// BudgetTable holds the shared budget's counters in a PostgreSQL control
// store: requests granted per budget name and second.
const BudgetTable = "_stripeline_fleet_budget"

// BudgetDDL creates BudgetTable (PostgreSQL).
const BudgetDDL = `CREATE TABLE IF NOT EXISTS ` + BudgetTable + ` (
	name TEXT NOT NULL,
	win BIGINT NOT NULL,
	used BIGINT NOT NULL,
	PRIMARY KEY (name, win)
)`

// Shared is a Budget every process of one PostgreSQL control store shares:
// a fixed window of one second of the database's clock, whose count of
// granted requests lives in BudgetTable and is raised with one conditional
// upsert per chunk of requests (a twentieth of the cap), so the database
// sees about twenty statements a second whatever the traffic. Within a
// window the processes together get at most the cap; across a window's
// edge two windows' grants may fall within one second (a fixed-window
// counter's known burst of up to twice the cap), which the accounts' own
// pacers and Stripe's 429 handling absorb.
type Shared struct {
	db    *sql.DB
	name  string
	cap   int64
	chunk int64

	mu     sync.Mutex
	win    int64 // the window the local tokens belong to
	left   int64 // tokens of win not yet spent here
	calls  int
	offset float64 // the database's clock minus ours, seconds
	synced bool
}

// NewShared makes the shared budget name of rps requests a second on a
// PostgreSQL control store (BudgetDDL must have run). rps ≤ 0 is Unlimited.
func NewShared(db *sql.DB, name string, rps float64) Budget {
	if rps <= 0 {
		return Unlimited{}
	}
	c := int64(math.Max(1, math.Floor(rps)))
	return &Shared{db: db, name: name, cap: c, chunk: max(1, c/20)}
}

// Wait takes one request from the current window, claiming a chunk from
// the store when the local ones are spent, and sleeps until the next
// window when the store has none left.
func (b *Shared) Wait(ctx context.Context) error {
	for {
		ok, wait, err := b.take(ctx)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// take spends a local token, or claims a chunk. Without a token it says
// how long until the window ends.
func (b *Shared) take(ctx context.Context) (bool, time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	local := func() float64 { return float64(time.Now().UnixNano())/1e9 + b.offset }
	if b.synced && b.left > 0 && int64(math.Floor(local())) == b.win {
		b.left--
		return true, 0, nil
	}
	// Windows follow the database's clock, so processes on hosts whose
	// clocks differ still share each second.
	var dbNow float64
	if err := b.db.QueryRowContext(ctx, `SELECT extract(epoch FROM clock_timestamp())::float8`).Scan(&dbNow); err != nil {
		return false, 0, fmt.Errorf("read the platform request budget: %w", err)
	}
	b.offset, b.synced = dbNow-float64(time.Now().UnixNano())/1e9, true
	now := dbNow
	win := int64(math.Floor(now))
	if win == b.win && b.left > 0 {
		b.left--
		return true, 0, nil
	}
	granted, err := b.claim(ctx, win, b.chunk)
	if err == nil && granted == 0 && b.chunk > 1 {
		granted, err = b.claim(ctx, win, 1)
	}
	if err != nil {
		return false, 0, err
	}
	if granted == 0 {
		return false, time.Duration((float64(win+1) - now) * float64(time.Second)), nil
	}
	b.win, b.left = win, granted-1
	return true, 0, nil
}

// claim raises window win's count by n if the cap allows it; it returns n
// or 0.
func (b *Shared) claim(ctx context.Context, win, n int64) (int64, error) {
	b.calls++
	if b.calls%200 == 0 {
		if _, err := b.db.ExecContext(ctx, `DELETE FROM `+BudgetTable+` WHERE name = $1 AND win < $2`, b.name, win-60); err != nil {
			return 0, fmt.Errorf("prune the platform request budget: %w", err)
		}
	}
	var used int64
	err := b.db.QueryRowContext(ctx, `INSERT INTO `+BudgetTable+` AS t (name, win, used) VALUES ($1, $2, $3)
ON CONFLICT (name, win) DO UPDATE SET used = t.used + EXCLUDED.used WHERE t.used + EXCLUDED.used <= $4
RETURNING used`, b.name, win, n, b.cap).Scan(&used)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim from the platform request budget: %w", err)
	}
	return n, nil
}
