package pipeline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// TestFollowStreamsARunningRunsLog follows a run whose Stripe requests are
// held: its first lines arrive while it is still running, the rest after
// the requests are let go, and the channel closes when the run ends.
func TestFollowStreamsARunningRunsLog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFixture(t, pipeline.Options{Work: true})
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
			f.emu.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	p := f.pipeline("follow")
	p.Connection.APIBase = srv.URL
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, "follow", pipeline.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := f.svc.Follow(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := <-lines
	if first.Msg != "run started" || first.Seq != 1 {
		t.Fatalf("first line: %+v", first)
	}
	if r, err := f.svc.GetRun(ctx, run.ID); err != nil || r.Status != pipeline.RunRunning {
		t.Fatalf("while its requests are held the run is %v (%v)", r.Status, err)
	}
	close(hold)
	last := first
	for l := range lines {
		if l.Seq != last.Seq+1 {
			t.Fatalf("line %d after %d", l.Seq, last.Seq)
		}
		last = l
	}
	if last.Msg != "run succeeded" {
		t.Fatalf("last line: %+v", last)
	}
}

// TestPausedAfterQueuedIsSkipped pauses a pipeline whose run is queued:
// the worker skips the run instead of starting it.
func TestPausedAfterQueuedIsSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{})
	if _, err := f.svc.Create(ctx, f.pipeline("later")); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, "later", pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Pause(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	worker := reopen(t, f, pipeline.Options{Work: true, PollInterval: 20 * time.Millisecond})
	done, err := worker.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != pipeline.RunSkipped || !done.Started.IsZero() || done.Rows != 0 {
		t.Fatalf("run of a paused pipeline: %+v", done)
	}
}
