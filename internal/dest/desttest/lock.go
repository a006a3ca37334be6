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
	first, second := lockHolder("a", 101), lockHolder("b", 202)

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
	// The same pipeline from the other destination, and from the first
	// one again: refused at once, the holder named.
	_, err = lb.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second})
	refused(t, err, first)
	_, err = la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: second})
	refused(t, err, first)
	if lq := lockOther(ctx, t, lb, first, o); lq != nil {
		defer lq.Unlock()
	}
	lockWaits(ctx, t, lb, first, second)
	l2 := lockHandover(ctx, t, l1, lb, first, second)
	// The new holder is the one named now.
	_, err = la.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: first})
	refused(t, err, second)
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

// lockHolder is a holder of pipeline p.
func lockHolder(run string, pid int) dest.Holder {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return dest.Holder{Pipeline: "p", Host: "host-" + run, PID: pid, RunID: "run-" + run, Since: since.Add(time.Duration(pid) * time.Second)}
}

// refused checks that err refuses a lock held by want, naming it.
func refused(t *testing.T, err error, want dest.Holder) {
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

// lockOther checks that another pipeline locks beside the holder of p (or,
// where one lock covers the destination, is refused naming the holder),
// and returns its lock.
func lockOther(ctx context.Context, t *testing.T, l dest.Locker, holder dest.Holder, o Options) dest.Lock {
	t.Helper()
	other := dest.Holder{Pipeline: "q", Host: "host-q", PID: 303, RunID: "run-q", Since: holder.Since}
	lq, err := l.Lock(ctx, dest.LockRequest{Pipeline: "q", Holder: other})
	if o.LockPerDestination {
		refused(t, err, holder)
		if err == nil || !strings.Contains(err.Error(), "pipeline p") {
			t.Errorf("message %v does not name the holder's pipeline", err)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("Lock of another pipeline: %v", err)
	}
	return lq
}

// lockWaits checks waits for a held lock: one that runs out is the same
// refusal, saying it waited; a cancelled context ends one.
func lockWaits(ctx context.Context, t *testing.T, l dest.Locker, holder, waiter dest.Holder) {
	t.Helper()
	_, err := l.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: waiter, Wait: 50 * time.Millisecond})
	refused(t, err, holder)
	var le *dest.LockedError
	if errors.As(err, &le) && le.Waited <= 0 {
		t.Errorf("LockedError after a wait says Waited = %v", le.Waited)
	}
	cctx, ccancel := context.WithCancel(ctx)
	_, err = l.Lock(cctx, dest.LockRequest{Pipeline: "p", Holder: waiter, Wait: dest.WaitForever, Waiting: func(dest.Holder) { ccancel() }})
	ccancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v, want context.Canceled", err)
	}
}

// lockHandover checks that a request that waits gets the lock once its
// holder releases it (Unlock twice is fine), and returns the new lock.
func lockHandover(ctx context.Context, t *testing.T, held dest.Lock, l dest.Locker, holder, waiter dest.Holder) dest.Lock {
	t.Helper()
	waiting := make(chan dest.Holder, 1)
	type result struct {
		l   dest.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := l.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: waiter, Wait: dest.WaitForever,
			Waiting: func(h dest.Holder) { waiting <- h }})
		got <- result{l, err}
	}()
	select {
	case h := <-waiting:
		if h.RunID != holder.RunID {
			t.Errorf("waiting for %+v, want %+v", h, holder)
		}
	case r := <-got:
		t.Fatalf("Lock returned without waiting for the holder: %v", r.err)
	case <-ctx.Done():
		t.Fatal("Lock neither waited nor returned")
	}
	if err := held.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := held.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("waiting Lock after the release: %v", r.err)
		}
		return r.l
	case <-ctx.Done():
		t.Fatal("the waiting Lock did not get the released lock")
	}
	return nil
}

// testFirstOpens checks that several destinations opened at once on one
// new place, each creating the same table (half of them with one more
// column), all succeed and can write.
func testFirstOpens(t *testing.T, _ Opener, o Options) {
	if o.Fresh == nil {
		t.Skip("the destination's test gives no Fresh")
	}
	open := o.Fresh(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			d, err := open(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			errs <- MigrateAndWrite(ctx, d, i)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// testLockLost checks that when the session holding a run lock ends,
// Lost is closed, the pipeline can be locked again, and Unlock of the lost
// lock is no error.
func testLockLost(t *testing.T, open Opener, o Options) {
	if o.EndSession == nil {
		t.Skip("the destination's test gives no EndSession")
	}
	d := openT(t, open)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lk := d.(dest.Locker)
	l, err := lk.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 1, RunID: "r1", Since: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	o.EndSession(t, d, "p")
	select {
	case <-l.Lost():
	case <-ctx.Done():
		t.Fatal("Lost was not closed after the session ended")
	}
	l2, err := lk.Lock(ctx, dest.LockRequest{Pipeline: "p", Holder: dest.Holder{Host: "h", PID: 2, RunID: "r2", Since: time.Now()}, Wait: time.Minute})
	if err != nil {
		t.Fatalf("Lock after the holder's session ended: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Error(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock of a lost lock: %v", err)
	}
}
