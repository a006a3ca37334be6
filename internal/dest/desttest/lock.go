package desttest

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// Options provide for the cases that need more than a fresh destination.
type Options struct {
	// Reopen opens a second destination on the place d lives in (the same
	// file, schema, database or directory), as a second process would. The
	// lock case needs it.
	Reopen func(t *testing.T, d dest.Destination) dest.Destination
	// OpenBroken prepares a place where a destination's set-up must fail
	// (a database user without the right to create tables, a path that
	// cannot be a database or a directory) and returns the Open to try
	// there, which may check for itself that nothing was left behind.
	OpenBroken func(t *testing.T) func(ctx context.Context) (dest.Destination, error)
	// LockPerDestination says one run lock covers every pipeline of the
	// destination (a files directory, whose pipelines share one state
	// file): a second pipeline is refused instead of running beside.
	LockPerDestination bool
}

// openTimeout bounds an Open that must fail: past it, Open hangs.
const openTimeout = 30 * time.Second

// testOpenFails checks that Open in a place where set-up fails returns an
// error promptly (no hang, the context does not run out) and leaves no
// goroutine behind.
func testOpenFails(t *testing.T, o Options) {
	if o.OpenBroken == nil {
		t.Skip("the destination's test gives no OpenBroken")
	}
	open := o.OpenBroken(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	type result struct {
		d   dest.Destination
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := open(ctx)
		done <- result{d, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatalf("Open did not return within %s", openTimeout)
	}
	if r.err == nil {
		r.d.Close()
		t.Fatal("Open succeeded where set-up must fail")
	}
	if ctx.Err() != nil || errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Open returned only when its context ran out: %v", r.err)
	}
	msg := r.err.Error()
	if strings.Contains(msg, "\n") || len(msg) < 20 {
		t.Errorf("Open's error is not one sentence: %q", msg)
	}
	t.Logf("Open: %v", r.err)
	// Goroutines a failed Open started (pools, watchers) end with it.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before Open, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling for goroutines to end, not synchronisation
	}
}

// testTwoWriters checks the run lock of dest.Locker across two
// destinations on one place: the second holder of a pipeline is refused
// with the first named, another pipeline locks beside it, a waiting
// request gets the lock once it is released, a wait runs out, and a
// cancelled context ends a wait.
func testTwoWriters(t *testing.T, open Opener, o Options) {
	if o.Reopen == nil {
		t.Skip("the destination's test gives no Reopen")
	}
	a := openT(t, open)
	la, ok := a.(dest.Locker)
	if !ok {
		t.Skipf("%T does not implement dest.Locker", a)
	}
	b := o.Reopen(t, a)
	t.Cleanup(func() { b.Close() })
	lb := b.(dest.Locker)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	holder := func(run string, pid int) dest.Holder {
		return dest.Holder{Pipeline: "p", Host: "host-" + run, PID: pid, RunID: "run-" + run, Since: since.Add(time.Duration(pid) * time.Second)}
	}
	first, second := holder("a", 101), holder("b", 202)

	l1, err := la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: first})
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}
	if ch := l1.Lost(); ch != nil {
		select {
		case <-ch:
			t.Fatal("a lock just taken is lost")
		default:
		}
	}
	refused := func(err error, want dest.Holder) {
		t.Helper()
		var le *dest.LockedError
		if !errors.As(err, &le) {
			t.Fatalf("Lock of a held pipeline = %v, want a *dest.LockedError", err)
		}
		got := le.Holder
		if got.RunID != want.RunID || got.PID != want.PID || got.Host != want.Host || !got.Since.Equal(want.Since) {
			t.Errorf("LockedError names %+v, want %+v", got, want)
		}
		msg := err.Error()
		for _, part := range []string{want.RunID, want.Host, want.Since.Format(time.RFC3339), "for the lock"} {
			if !strings.Contains(msg, part) {
				t.Errorf("message %q does not say %q", msg, part)
			}
		}
	}
	// The same pipeline from the other destination, and from the first
	// one again: refused at once, the holder named.
	_, err = lb.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second})
	refused(err, first)
	_, err = la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second})
	refused(err, first)

	// Another pipeline runs beside it (or, where one lock covers the
	// destination, is refused naming the holder).
	other := dest.Holder{Pipeline: "q", Host: "host-q", PID: 303, RunID: "run-q", Since: since}
	lq, err := lb.Lock(ctx, dest.LockRequest{Pipeline: "q", Holder: other})
	if o.LockPerDestination {
		refused(err, first)
		if err == nil || !strings.Contains(err.Error(), "pipeline p") {
			t.Errorf("message %v does not name the holder's pipeline", err)
		}
	} else {
		if err != nil {
			t.Fatalf("Lock of another pipeline: %v", err)
		}
		defer lq.Unlock()
	}

	// A wait that runs out is the same refusal, saying it waited.
	_, err = lb.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second, Wait: 50 * time.Millisecond})
	refused(err, first)
	var le *dest.LockedError
	if errors.As(err, &le) && le.Waited <= 0 {
		t.Errorf("LockedError after a wait says Waited = %v", le.Waited)
	}

	// A cancelled context ends a wait.
	cctx, ccancel := context.WithCancel(ctx)
	_, err = lb.Lock(cctx, dest.LockRequest{Pipeline: "p", Holder: second, Wait: dest.WaitForever, Waiting: func(dest.Holder) { ccancel() }})
	ccancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v, want context.Canceled", err)
	}

	// A request that waits gets the lock once the holder releases it.
	waiting := make(chan dest.Holder, 1)
	type result struct {
		l   dest.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := lb.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second, Wait: dest.WaitForever,
			Waiting: func(h dest.Holder) { waiting <- h }})
		got <- result{l, err}
	}()
	select {
	case h := <-waiting:
		if h.RunID != first.RunID {
			t.Errorf("waiting for %+v, want %+v", h, first)
		}
	case r := <-got:
		t.Fatalf("Lock returned without waiting for the holder: %v", r.err)
	case <-ctx.Done():
		t.Fatal("Lock neither waited nor returned")
	}
	if err := l1.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := l1.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	var l2 dest.Lock
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("waiting Lock after the release: %v", r.err)
		}
		l2 = r.l
	case <-ctx.Done():
		t.Fatal("the waiting Lock did not get the released lock")
	}
	// The new holder is the one named now.
	_, err = la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: first})
	refused(err, second)
	if err := l2.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	// What one destination wrote under the lock, the other reads once it
	// holds the lock (free again: it takes it at once).
	migrate(t, b, customers)
	write(t, b, &dest.Batch{Table: customers, Rows: []dest.Row{customer("cus_1", 1, "a@x")}})
	l3, err := la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: first})
	if err != nil {
		t.Fatalf("Lock after both released: %v", err)
	}
	check(t, a, customers, "", customer("cus_1", 1, "a@x"))
	if err := l3.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}
