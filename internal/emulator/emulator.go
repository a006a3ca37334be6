// Package emulator is a stateful Stripe API emulator: an http.Handler that
// speaks Stripe's wire format over a deterministically generated account
// (customers, subscriptions, invoices with lines, charges, refunds, payouts,
// events, …), with list pagination and created filters as Stripe has them,
// 30-day event retention, search, writes with idempotency keys, connected
// accounts, restricted keys, and knobs for latency, rate limits and faults.
// It backs the demo, the engine tests and the benchmarks.
//
// All methods are safe for concurrent use.
package emulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Config sets up an Emulator. The zero value is a usable default.
type Config struct {
	// Seed and Objects make the generated account; the same Seed, Objects
	// and Now give the same data. Objects is approximate (default 20000).
	Seed    int64
	Objects int
	// ConnectedAccounts is how many smaller connected accounts are seeded
	// (default 2; negative for none).
	ConnectedAccounts int
	// ConnectedObjects is the approximate size of each connected account
	// (default Objects/10, at least 300). A fleet benchmark sets it.
	ConnectedObjects int
	// AccountRPS is each account's own rate limit (0 = none): every
	// account, the main one and each connected one, has a bucket of its own,
	// as Stripe limits each account separately; excess requests get the 429.
	AccountRPS float64
	// TestClocks is how many test clocks the main account has (default 2;
	// negative for none), each with one to three customers (Stripe's limit
	// is three) and their subscriptions, invoices and payments. Objects
	// under a clock are left out of plain customer, subscription and quote
	// lists and need test_clock=. Connected accounts get at most two.
	TestClocks int
	// Shape selects what the account holds besides its size: ShapeDefault
	// (or "") the hand-modelled billing streams; ShapeSmallStreams also a
	// few objects in every other top-level list of the catalog.
	Shape string
	// Latency is added to every API request.
	Latency time.Duration
	// RPS and EndpointRPS are the global and per-endpoint rate limits
	// (0 = unlimited); excess requests get Stripe's 429.
	RPS, EndpointRPS float64
	// FailRate is the fraction of requests answered 500 with
	// Stripe-Should-Retry: true; DropRate the fraction whose connection is
	// dropped without an answer.
	FailRate, DropRate float64
	// Keys are accepted besides any key shaped sk_test_…, sk_live_…,
	// rk_test_… or rk_live_….
	Keys []string
	// Restricted grants permissions to restricted keys, e.g.
	// "rk_test_cust" → {"rak_customer_read"}; unlisted rk_ keys may do anything.
	Restricted map[string][]string
	// Webhooks shapes the delivery of events to registered webhook
	// endpoints (duplicates, delays, out-of-order arrival, retries).
	Webhooks WebhookConfig
	// Now is the clock's start (default time.Now()).
	Now time.Time
}

// Emulator is the emulated Stripe API. Create it with New.
type Emulator struct {
	cfg     Config
	sp      *spec
	tpls    *templates
	handler http.Handler // the request pipeline (chain.go)

	mu       sync.RWMutex // guards accounts' data
	accounts []*account
	byAcct   map[string]*account
	// revoked are connected accounts whose platform access was revoked
	// (Deauthorize): not listed, and refused with 403 account_invalid.
	revoked map[string]bool

	acctMu     sync.Mutex
	acctLimits map[string]*rate.Limiter // AccountRPS buckets by account id

	clockMu sync.Mutex
	offset  time.Duration
	start   time.Time // the configured Now
	wall    time.Time // wall time at start

	faultMu     sync.Mutex
	delay       time.Duration // latency added to every request
	global      *rate.Limiter
	endpointRPS float64
	endpoints   map[string]*rate.Limiter
	failRate    float64
	dropRate    float64
	faultRand   *rand.Rand

	requests, rateLimited, serverErrors, dropped atomic.Int64
	inflight, peak                               atomic.Int64
	catStreams                                   []catalog.Stream
	statsMu                                      sync.Mutex
	byEndpoint                                   map[string]int64

	hooks *hooks // webhook deliveries (webhooks.go)

	reqSeq atomic.Uint64
	rnd    *rand.Rand // for ids of writes; guarded by mu
	evBuf  []byte     // event render scratch; guarded by mu (or generation)
}

// New generates the account(s) and returns the emulator.
func New(cfg Config) (*Emulator, error) {
	if cfg.Objects < 0 {
		return nil, errors.New("emulator: Objects must not be negative")
	}
	if cfg.Objects == 0 {
		cfg.Objects = 20000
	}
	if cfg.ConnectedAccounts == 0 {
		cfg.ConnectedAccounts = 2
	}
	if cfg.ConnectedAccounts < 0 {
		cfg.ConnectedAccounts = 0
	}
	if cfg.TestClocks == 0 {
		cfg.TestClocks = 2
	}
	if cfg.TestClocks < 0 {
		cfg.TestClocks = 0
	}
	if cfg.Shape == "" {
		cfg.Shape = ShapeDefault
	}
	if !validShape(cfg.Shape) {
		return nil, fmt.Errorf("emulator: unknown shape %q (use %s)", cfg.Shape, strings.Join(Shapes, " or "))
	}
	if cfg.FailRate < 0 || cfg.FailRate > 1 || cfg.DropRate < 0 || cfg.DropRate > 1 {
		return nil, fmt.Errorf("emulator: fail and drop rates must be within [0, 1], got %v and %v", cfg.FailRate, cfg.DropRate)
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	sp, err := loadSpec()
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e := &Emulator{
		cfg:        cfg,
		sp:         sp,
		tpls:       &templates{sp: sp, m: map[string]*tmpl{}},
		byAcct:     map[string]*account{},
		revoked:    map[string]bool{},
		acctLimits: map[string]*rate.Limiter{},
		start:      cfg.Now.Truncate(time.Second),
		wall:       time.Now(),
		endpoints:  map[string]*rate.Limiter{},
		faultRand:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0xfa017)),
		byEndpoint: map[string]int64{},
		rnd:        rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		hooks:      newHooks(cfg.Webhooks),
	}
	for _, s := range catalogStreams() {
		if _, mine := defByName[s.Name]; mine || s.Name == "events" {
			continue
		}
		known := false
		for _, d := range defs {
			if d.path == s.Path {
				known = true
			}
		}
		if !known {
			e.catStreams = append(e.catStreams, s)
		}
	}
	e.handler = e.newHandler()
	e.SetFaults(cfg.Latency, cfg.RPS, cfg.EndpointRPS, cfg.FailRate, cfg.DropRate)
	now := e.start.Unix()
	main := e.generate(cfg.Seed, cfg.Objects, now, 0, cfg.TestClocks, cfg.Shape)
	e.addAccount(main)
	for i := 1; i <= cfg.ConnectedAccounts; i++ {
		n := cfg.Objects / 10
		if n < 300 {
			n = 300
		}
		if cfg.ConnectedObjects > 0 {
			n = cfg.ConnectedObjects
		}
		e.addAccount(e.generate(cfg.Seed+int64(i)*7919, n, now, i, min(cfg.TestClocks, 2), cfg.Shape))
	}
	return e, nil
}

func (e *Emulator) addAccount(a *account) {
	e.accounts = append(e.accounts, a)
	e.byAcct[a.id] = a
}

// Now returns the emulator's clock: the configured start, plus the wall
// time elapsed since New, plus every Advance.
func (e *Emulator) Now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.start.Add(time.Since(e.wall) + e.offset)
}

func (e *Emulator) unix() int64 { return e.Now().Unix() }

// Advance moves the clock forward by d.
func (e *Emulator) Advance(d time.Duration) {
	e.clockMu.Lock()
	e.offset += d
	e.clockMu.Unlock()
}

// Accounts returns "" for the main account, then the connected accounts' ids.
func (e *Emulator) Accounts() []string {
	out := []string{""}
	for _, a := range e.accounts[1:] {
		out = append(out, a.id)
	}
	return out
}

// MainAccountID is the id of the main account (what GET /v1/account returns).
func (e *Emulator) MainAccountID() string { return e.accounts[0].id }

func (e *Emulator) account(id string) (*account, bool) {
	if id == "" {
		return e.accounts[0], true
	}
	a, ok := e.byAcct[id]
	return a, ok
}
