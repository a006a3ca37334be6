// Package desttest is the conformance suite every destination passes:
// table creation, idempotent upserts, soft deletes, schema evolution, state
// written atomically with its rows, state without rows, conditional
// (newer-only) writes, run history, streamed reads, odd values, concurrent
// writers, the sentinel errors and the run lock. A destination's test
// calls RunWith with a factory that opens a fresh, empty destination and
// the capabilities it claims; the suite reads rows back through
// dest.Reader.
package desttest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
)

// Opener opens a fresh, empty destination for one test; the suite closes it.
type Opener func(t *testing.T) dest.Destination

// Caps are the abilities a destination claims. The suite checks each
// claim both ways (an optional interface claimed is implemented, one
// implemented is claimed), so that no ability goes missing unnoticed, and
// runs the cases of each claimed ability.
type Caps struct {
	Query       bool // dest.Querier
	Sweep       bool // dest.Sweeper
	Lock        bool // dest.Locker
	FullRefresh bool // dest.FullRefresher
	Drop        bool // dest.Dropper
	// OnlyNewer: conditional writes (Batch.OnlyNewer) are supported.
	OnlyNewer bool
	// Serial keeps the cases from running in parallel with each other.
	Serial bool
}

// Options provide for the cases that need more than a fresh destination.
type Options struct {
	Caps Caps
	// Reopen opens a second destination on the place d lives in (the same
	// file, schema, database or directory), as a second process would. The
	// lock case needs it.
	Reopen func(t *testing.T, d dest.Destination) dest.Destination
	// Fresh prepares a new, empty place and returns the Open of it, which
	// may be called several times at once (first runs racing on a new
	// destination).
	Fresh func(t *testing.T) func(ctx context.Context) (dest.Destination, error)
	// OpenBroken prepares a place where a destination's set-up must fail
	// (a database user without the right to create tables, a path that
	// cannot be a database or a directory) and returns the Open to try
	// there, which may check for itself that nothing was left behind.
	OpenBroken func(t *testing.T) func(ctx context.Context) (dest.Destination, error)
	// EndSession ends, from outside, the database session that holds d's
	// run lock of pipeline (as an administrator or a server restart
	// would): the lock must be reported lost.
	EndSession func(t *testing.T, d dest.Destination, pipeline string)
	// LockPerDestination says one run lock covers every pipeline of the
	// destination (a files directory, whose pipelines share one state
	// file): a second pipeline is refused instead of running beside.
	LockPerDestination bool
}

// Run runs the whole suite against destinations made by open, claiming
// no capability, without the cases that need Options.
func Run(t *testing.T, open Opener) { RunWith(t, open, Options{}) }

// testCase is one case of the suite and the capability it needs.
type testCase struct {
	name  string
	fn    func(*testing.T, Opener, Options)
	needs func(Caps) bool
}

func always(Caps) bool { return true }

// plain adapts a case that needs only the opener.
func plain(fn func(*testing.T, Opener)) func(*testing.T, Opener, Options) {
	return func(t *testing.T, open Opener, _ Options) { fn(t, open) }
}

func cases() []testCase {
	query := func(c Caps) bool { return c.Query }
	return []testCase{
		{"CreateTable", plain(testCreateTable), always},
		{"UpsertIdempotent", plain(testIdempotent), always},
		{"DuplicateIDsLastWins", plain(testDuplicateIDs), always},
		{"SoftDelete", plain(testSoftDelete), always},
		{"SchemaEvolution", plain(testSchemaEvolution), always},
		{"StateAtomicWithRows", plain(testAtomic), always},
		{"StateCancelledContext", plain(testCancelled), always},
		{"StateRoundTrip", plain(testState), always},
		{"SaveState", plain(testSaveState), always},
		{"Runs", plain(testRuns), always},
		{"ChildTables", plain(testChildTables), always},
		{"OddValues", plain(testOddValues), always},
		{"ConcurrentStreams", plain(testConcurrent), always},
		{"Reopen", plain(testReopenAfterClose), always},
		{"Closed", plain(testClosed), always},
		{"NoTable", plain(testNoTable), always},
		{"Tables", plain(testTables), always},
		{"RowsStreamed", plain(testRowsStreamed), always},
		{"Sweeper", plain(testSweeper), func(c Caps) bool { return c.Sweep }},
		{"QueryArgs", plain(testQueryArgs), query},
		{"OnlyNewer", plain(testOnlyNewer), func(c Caps) bool { return c.OnlyNewer }},
		{"OnlyNewerInBatch", plain(testOnlyNewerInBatch), func(c Caps) bool { return c.OnlyNewer }},
		{"ConcurrentFirstOpens", testFirstOpens, func(Caps) bool { return true }},
		{"LockLost", testLockLost, func(c Caps) bool { return c.Lock }},
		{"Drop", plain(testDrop), func(c Caps) bool { return c.Drop }},
	}
}

// RunWith runs the whole suite against destinations made by open: the
// cases of every claimed capability, in parallel unless o.Caps.Serial,
// then the ones that watch the whole process (goroutines, locks) alone.
func RunWith(t *testing.T, open Opener, o Options) {
	t.Run("Caps", func(t *testing.T) { testCaps(t, open, o.Caps) })
	t.Run("Cases", func(t *testing.T) {
		for _, tc := range cases() {
			t.Run(tc.name, func(t *testing.T) {
				if !o.Caps.Serial {
					t.Parallel()
				}
				if !tc.needs(o.Caps) {
					t.Skipf("the destination does not claim what %s needs", tc.name)
				}
				tc.fn(t, open, o)
			})
		}
	})
	t.Run("OpenFailsCleanly", func(t *testing.T) { testOpenFails(t, o) })
	t.Run("TwoWritersOfOnePipeline", func(t *testing.T) { testTwoWriters(t, open, o) })
}

// testCaps checks the claimed capabilities against the interfaces the
// destination implements.
func testCaps(t *testing.T, open Opener, c Caps) {
	d := openT(t, open)
	for _, cap := range []struct {
		name    string
		claimed bool
		has     bool
	}{
		{"Query (dest.Querier)", c.Query, is[dest.Querier](d)},
		{"Sweep (dest.Sweeper)", c.Sweep, is[dest.Sweeper](d)},
		{"Lock (dest.Locker)", c.Lock, is[dest.Locker](d)},
		{"FullRefresh (dest.FullRefresher)", c.FullRefresh, is[dest.FullRefresher](d)},
		{"Drop (dest.Dropper)", c.Drop, is[dest.Dropper](d)},
		{"dest.Reader", true, is[dest.Reader](d)},
	} {
		switch {
		case cap.claimed && !cap.has:
			t.Errorf("%T claims %s but does not implement it", d, cap.name)
		case !cap.claimed && cap.has:
			t.Errorf("%T implements %s but the test does not claim it", d, cap.name)
		}
	}
}

func is[T any](d dest.Destination) bool {
	_, ok := d.(T)
	return ok
}

// Places opens destinations by URL and remembers where each one lives, so
// that Reopen can open another on the same place. Safe for the parallel
// cases; the zero value is ready to use.
type Places struct {
	mu   sync.Mutex
	urls map[dest.Destination]string
}

// Open opens the destination at rawURL, failing the test if it cannot.
func (p *Places) Open(t *testing.T, rawURL string) dest.Destination {
	t.Helper()
	d, err := dest.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.urls == nil {
		p.urls = map[dest.Destination]string{}
	}
	p.urls[d] = rawURL
	return d
}

// URL returns the URL d was opened with.
func (p *Places) URL(d dest.Destination) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls[d]
}

// Reopen opens a second destination where d lives (Options.Reopen).
func (p *Places) Reopen(t *testing.T, d dest.Destination) dest.Destination {
	return p.Open(t, p.URL(d))
}

// OpenAt is an Options.Fresh that opens rawURL.
func OpenAt(rawURL string) func(ctx context.Context) (dest.Destination, error) {
	return func(ctx context.Context) (dest.Destination, error) { return dest.Open(ctx, rawURL) }
}

// FromEnv returns the server URL in the environment variable name, or
// skips the test with a message saying how to set it (e.g. example).
func FromEnv(t testing.TB, name, example string) string {
	t.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		t.Skipf("%s is not set (e.g. %s); skipping the tests that need that server", name, example)
	}
	return raw
}

// Unreachable checks that opening rawURL (a server that does not answer,
// its password hunter2) fails with one error that hides the password and
// says each of want (the destination, the fix).
func Unreachable(t *testing.T, rawURL string, want ...string) {
	t.Helper()
	_, err := dest.Open(context.Background(), rawURL)
	if err == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error shows the password: %s", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}

// OpenSays is an Options.OpenBroken Open of rawURL that also checks its
// error says fix.
func OpenSays(t *testing.T, rawURL, fix string) func(ctx context.Context) (dest.Destination, error) {
	return func(ctx context.Context) (dest.Destination, error) {
		d, err := dest.Open(ctx, rawURL)
		if err != nil && !strings.Contains(err.Error(), fix) {
			t.Errorf("error %q does not say the fix %q", err, fix)
		}
		return d, err
	}
}
