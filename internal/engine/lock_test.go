package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// signalHandler is a slog handler that sends the messages it sees.
type signalHandler struct{ msgs chan string }

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// TestSyncTakesTheRunLock: while another holder has the pipeline's lock a
// run is refused before it writes anything, naming the holder; another
// pipeline runs beside it; with LockWait the run waits and then runs.
func TestSyncTakesTheRunLock(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 3, Objects: 300})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holder := dest.Holder{Pipeline: "default", Host: "elsewhere", PID: 4242, RunID: "20261201T100000Z-cafe", Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l, err := f.dst.(dest.Locker).Lock(ctx, dest.LockRequest{Pipeline: "default", Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()

	_, err = engine.Sync(ctx, engine.Options{Client: f.client, Dest: f.dst, Streams: []string{"customers"}})
	var le *dest.LockedError
	if !errors.As(err, &le) || le.Holder.RunID != holder.RunID {
		t.Fatalf("Sync while locked = %v, want a *dest.LockedError naming %s", err, holder.RunID)
	}
	want := "pipeline default is being synced by run 20261201T100000Z-cafe (pid 4242 on host elsewhere, since 2026-12-01T10:00:00Z); wait for it to finish, or wait for the lock"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if runs, err := f.dst.Runs(ctx, "", 10); err != nil || len(runs) != 0 {
		t.Errorf("a refused run recorded runs %+v (%v)", runs, err)
	}

	if res, err := engine.Sync(ctx, engine.Options{Client: f.client, Dest: f.dst, Pipeline: "other", Streams: []string{"customers"}}); err != nil || res.Status != "succeeded" {
		t.Fatalf("another pipeline beside the held one: %v", err)
	}

	msgs := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		_, err := engine.Sync(ctx, engine.Options{Client: f.client, Dest: f.dst, Streams: []string{"customers"},
			LockWait: dest.WaitForever, Logger: slog.New(signalHandler{msgs})})
		done <- err
	}()
wait:
	for {
		select {
		case msg := <-msgs:
			if strings.HasPrefix(msg, "waiting for another run") {
				break wait
			}
		case err := <-done:
			t.Fatalf("Sync returned without waiting for the lock: %v", err)
		}
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Sync that waited for the lock: %v", err)
	}
	runs, err := f.dst.Runs(ctx, "default", 10)
	if err != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Fatalf("runs after the wait: %+v (%v)", runs, err)
	}
	// The lock is free again.
	l2, err := f.dst.(dest.Locker).Lock(ctx, dest.LockRequest{Pipeline: "default", Holder: holder})
	if err != nil {
		t.Fatalf("lock after the run: %v", err)
	}
	l2.Unlock()
}

// lostLocker hands out locks that are lost as soon as lose is closed.
type lostLocker struct {
	dest.Destination
	lose chan struct{}
}

type lostLock struct{ lost chan struct{} }

func (l lostLock) Unlock() error         { return nil }
func (l lostLock) Lost() <-chan struct{} { return l.lost }
func (d lostLocker) Lock(context.Context, dest.LockRequest) (dest.Lock, error) {
	return lostLock{d.lose}, nil
}

// TestSyncStopsWhenTheLockIsLost: a run whose lock is lost mid-run stops
// and records why.
func TestSyncStopsWhenTheLockIsLost(t *testing.T) {
	emu, err := emulator.New(emulator.Config{Seed: 3, Objects: 300})
	if err != nil {
		t.Fatal(err)
	}
	lose := make(chan struct{})
	var once sync.Once
	// The first request loses the lock and answers only when the run
	// gives up on it, so the run cannot finish before it notices.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(lose)
			<-r.Context().Done()
			return
		}
		emu.ServeHTTP(w, r)
	}))
	defer srv.Close()
	client, err := stripe.New(stripe.Config{Key: "sk_test_engine", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := dest.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = engine.Sync(ctx, engine.Options{Client: client, Dest: lostLocker{dst, lose}, Streams: []string{"customers"}})
	if !errors.Is(err, engine.ErrLockLost) {
		t.Fatalf("Sync after losing its lock = %v, want ErrLockLost", err)
	}
	runs, err := dst.Runs(ctx, "", 10)
	if err != nil || len(runs) != 1 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "run lock was lost") {
		t.Fatalf("run record %+v (%v)", runs, err)
	}
}
