package pipeline_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func TestSettingsPersistInTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := "sqlite://" + filepath.Join(t.TempDir(), "control.db")
	f := newFixture(t, pipeline.Options{Store: store})
	if v, err := f.svc.Setting(ctx, "server.token_sha256"); err != nil || v != "" {
		t.Fatalf("unset setting = %q, %v; want empty", v, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := f.svc.SetSetting(ctx, "server.token_sha256", v); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.Close()
	again, err := pipeline.Open(ctx, pipeline.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, err := again.Setting(ctx, "server.token_sha256"); err != nil || v != "two" {
		t.Fatalf("setting after reopen = %q, %v; want two", v, err)
	}
}

func TestOnRunEndHearsEachEndedAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ended := make(chan *pipeline.Run, 4)
	f := newFixture(t, pipeline.Options{Work: true, OnRunEnd: func(r *pipeline.Run) { ended <- r }})
	if _, err := f.svc.Create(ctx, f.pipeline("acme")); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, "acme", pipeline.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := <-ended
	if got.ID != run.ID || got.Status != pipeline.RunSucceeded || got.Rows != done.Rows || got.Requests != done.Requests || got.Rows == 0 {
		t.Fatalf("OnRunEnd got %+v, want the stored run %+v", got, done)
	}
	if p := f.svc.Progress(run.ID); p != nil {
		t.Fatalf("progress of an ended run = %+v, want nil", p)
	}
	select {
	case extra := <-ended:
		t.Fatalf("OnRunEnd told twice: %+v", extra)
	default:
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunRowsAreRowsWritten: an incremental run's rows are the rows its
// tables got, not those plus the events the sweep applied.
func TestRunRowsAreRowsWritten(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	p := f.pipeline("acme")
	p.Streams = []string{"customers"}
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	run := func() *pipeline.Run {
		t.Helper()
		r, err := f.svc.Run(ctx, "acme", pipeline.TriggerAPI)
		if err != nil {
			t.Fatal(err)
		}
		done, err := f.svc.Wait(ctx, r.ID)
		if err != nil || done.Status != pipeline.RunSucceeded {
			t.Fatalf("run: %v %+v", err, done)
		}
		return done
	}
	run()
	if err := f.emu.Mutate("", "customers", 3, 2, 0); err != nil {
		t.Fatal(err)
	}
	done := run()
	var customers int64
	for _, s := range done.Streams {
		if s.Stream == "customers" {
			customers = s.Rows
		}
	}
	if done.Events == 0 || customers == 0 || done.Rows != customers {
		t.Fatalf("incremental run: %d rows, customers %d, events applied %d; want rows = the customers rows", done.Rows, customers, done.Events)
	}
}
