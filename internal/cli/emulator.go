package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/emulator"
)

func newEmulatorCmd(a *App) *cobra.Command {
	var (
		addr        string
		seed        int64
		objects     int
		latency     time.Duration
		rps         float64
		endpointRPS float64
		failRate    float64
		dropRate    float64
		connected   int
		connObjects int
		accountRPS  float64
		testClocks  int
		shape       string
		keys        []string
		public      bool
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run the Stripe API emulator with a seeded account until interrupted",
		Long: `emulator serves a stateful Stripe API on --addr: a deterministic account of
--objects objects (seed --seed) with connected accounts, --test-clocks test
clocks (each with one to three customers and their subscriptions, invoices and
payments, hidden from plain lists as Stripe hides them), events, search,
writes and idempotency, plus optional latency, rate limits and injected faults.
--shape small-streams also puts a few objects in every other top-level list of
the catalog (~70 small streams).
Point stripeline at it with --api-base http://ADDR and any sk_test_ key.
Admin endpoints live under /_emulator/ (mutate, advance, stats, faults, objects,
counts, children, accounts, deauthorize).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if objects <= 0 {
				return usagef("--objects must be positive, got %d", objects)
			}
			if failRate < 0 || failRate > 1 || dropRate < 0 || dropRate > 1 {
				return usagef("--fail-rate and --drop-rate must be within 0..1")
			}
			if rps < 0 || endpointRPS < 0 || latency < 0 || accountRPS < 0 || connObjects < 0 {
				return usagef("--rps, --endpoint-rps, --account-rps, --connected-objects and --latency must not be negative")
			}
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return usagef("--addr %q: %v", addr, err)
			}
			if !public && !isLoopback(host) {
				return usagef("--addr %s is not a loopback address; pass --public to listen on it", addr)
			}
			if connected == 0 {
				connected = -1
			}
			if testClocks < 0 {
				return usagef("--test-clocks must be 0 or more, got %d", testClocks)
			}
			if testClocks == 0 {
				testClocks = -1 // none
			}
			known := false
			for _, s := range emulator.Shapes {
				known = known || shape == s
			}
			if !known {
				return usagef("--shape %q: use %s", shape, strings.Join(emulator.Shapes, " or "))
			}
			return a.runEmulator(cmd.Context(), addr, emulator.Config{
				Seed: seed, Objects: objects, ConnectedAccounts: connected, TestClocks: testClocks, Shape: shape, Latency: latency,
				RPS: rps, EndpointRPS: endpointRPS, FailRate: failRate, DropRate: dropRate, Keys: keys,
				ConnectedObjects: connObjects, AccountRPS: accountRPS,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:12111", "address to listen on (loopback unless --public)")
	f.Int64Var(&seed, "seed", 42, "seed of the generated account")
	f.IntVar(&objects, "objects", 20000, "approximate objects in the main account")
	f.DurationVar(&latency, "latency", 0, "latency added to every request, e.g. 300ms")
	f.Float64Var(&rps, "rps", 0, "global requests per second before 429s (0 = unlimited)")
	f.Float64Var(&endpointRPS, "endpoint-rps", 0, "requests per second per endpoint before 429s (0 = unlimited)")
	f.Float64Var(&failRate, "fail-rate", 0, "fraction of requests answered 500 (0..1)")
	f.Float64Var(&dropRate, "drop-rate", 0, "fraction of requests whose connection is dropped (0..1)")
	f.IntVar(&connected, "connected-accounts", 2, "connected accounts to seed")
	f.IntVar(&connObjects, "connected-objects", 0, "approximate objects in each connected account (default a tenth of --objects, at least 300)")
	f.Float64Var(&accountRPS, "account-rps", 0, "requests per second of each account on its own before 429s, as Stripe limits each account (0 = unlimited)")
	f.IntVar(&testClocks, "test-clocks", 2, "test clocks in the main account, each with 1–3 customers (Stripe's limit is 3)")
	f.StringVar(&shape, "shape", emulator.ShapeDefault, "account shape: default (billing streams) or small-streams (also a few objects in every other top-level list)")
	f.StringSliceVar(&keys, "key", nil, "extra API key to accept (any sk_test_… key is accepted anyway)")
	f.BoolVar(&public, "public", false, "allow a non-loopback --addr")
	return cmd
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *App) runEmulator(ctx context.Context, addr string, cfg emulator.Config) error {
	begin := a.now()
	emu, err := emulator.New(cfg)
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	counts := emu.Counts("")
	names := make([]string, 0, len(counts))
	total := 0
	for n, c := range counts {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	fmt.Fprintf(a.Stderr, "emulator listening on http://%s (seed %d, %d objects, generated in %.1fs)\n", ln.Addr(), cfg.Seed, total, time.Since(begin).Seconds())
	for _, n := range names {
		fmt.Fprintf(a.Stderr, "  %-32s %d\n", n, counts[n])
	}
	if accts := emu.Accounts()[1:]; len(accts) > 0 {
		fmt.Fprintf(a.Stderr, "connected accounts: %v\n", accts)
	}
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve the emulator: %w", err)
	}
}
