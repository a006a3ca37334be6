package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 10, 7, 30, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		text string
		want time.Time
	}{
		{"every 15m", "every 15m", time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)},
		{"15m", "every 15m", time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)},
		{"every 2h", "every 2h", time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)},
		{"cron 0 */6 * * *", "cron 0 */6 * * *", time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)},
		{"cron:5 10 * * *", "cron 5 10 * * *", time.Date(2026, 3, 5, 10, 5, 0, 0, time.UTC)},
		{"manual", "manual", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s, err := pipeline.ParseSchedule(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := s.String(); got != tc.text {
			t.Errorf("%q prints %q, want %q", tc.in, got, tc.text)
		}
		if got := s.Next(at); !got.Equal(tc.want) {
			t.Errorf("%q: next after %s is %s, want %s", tc.in, at, got, tc.want)
		}
	}
	for _, bad := range []string{"every 10s", "cron 61 * * * *", "sometimes", "every -5m"} {
		_, err := pipeline.ParseSchedule(bad)
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) || fe.Setting() != "schedule" {
			t.Errorf("%q: %v, want a schedule FieldError", bad, err)
		}
	}
}

// scheduledRuns counts a pipeline's runs by trigger.
func scheduledRuns(t *testing.T, svc *pipeline.Service, name string) (runs []*pipeline.Run) {
	t.Helper()
	all, err := svc.Runs(context.Background(), pipeline.RunFilter{Pipeline: name, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Trigger == pipeline.TriggerSchedule {
			runs = append(runs, r)
		}
	}
	return runs
}

// ranRuns are the scheduled runs that were not skipped.
func ranRuns(t *testing.T, svc *pipeline.Service, name string) (runs []*pipeline.Run) {
	t.Helper()
	for _, r := range scheduledRuns(t, svc, name) {
		if r.Status != pipeline.RunSkipped {
			runs = append(runs, r)
		}
	}
	return runs
}

// TestSchedulesOnFakeTime runs River's periodic jobs on synctest's fake
// clock: an interval schedule and a cron schedule fire on their ticks, a
// paused pipeline is skipped, a tick while the pipeline's run goes on is
// refused (unique jobs), as is a manual run then, and after downtime the
// missed ticks make one run.
func TestSchedulesOnFakeTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixtureWith(t, pipeline.Options{Schedules: true, PollInterval: 10 * time.Second}, true)
		every := f.pipeline("every1")
		every.Schedule = pipeline.MustSchedule("every 1m")
		cron := f.pipeline("cron2")
		cron.Schedule = pipeline.MustSchedule("cron */2 * * * *")
		for _, p := range []pipeline.Pipeline{every, cron} {
			if _, err := f.svc.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		// Four minutes from the start hold four 1-minute ticks and two
		// 2-minute ones.
		time.Sleep(4*time.Minute + 30*time.Second)
		synctest.Wait()
		wantEvery := countTicks(start, time.Now(), every.Schedule)
		wantCron := countTicks(start, time.Now(), cron.Schedule)
		if got := len(scheduledRuns(t, f.svc, "every1")); got != wantEvery {
			t.Errorf("every 1m: %d scheduled runs in 4 minutes, want %d", got, wantEvery)
		}
		if got := len(scheduledRuns(t, f.svc, "cron2")); got != wantCron {
			t.Errorf("cron */2: %d scheduled runs in 4 minutes, want %d", got, wantCron)
		}
		for _, r := range scheduledRuns(t, f.svc, "every1") {
			if r.Status != pipeline.RunSucceeded {
				t.Errorf("run %d: %s %s", r.ID, r.Status, r.Error)
			}
		}

		// Paused: the ticks pass without a run.
		if _, err := f.svc.Pause(ctx, "every1"); err != nil {
			t.Fatal(err)
		}
		// (A tick inserted just before the pause is recorded as skipped.)
		before := len(ranRuns(t, f.svc, "every1"))
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if got := len(ranRuns(t, f.svc, "every1")); got != before {
			t.Errorf("paused: %d scheduled runs ran, want still %d", got, before)
		}
		p, err := f.svc.Get(ctx, "every1")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.State != pipeline.StatePaused || !p.Status.NextRun.IsZero() {
			t.Errorf("paused status: %+v", p.Status)
		}
		if _, err := f.svc.Resume(ctx, "every1"); err != nil {
			t.Fatal(err)
		}

		// Overlap: each request takes 70 seconds, so a run outlasts the next
		// tick; that tick is refused and so is a manual run.
		f.emu.SetFaults(70*time.Second, 0, 0, 0, 0)
		before = len(ranRuns(t, f.svc, "every1"))
		next := every.Schedule.Next(time.Now())
		time.Sleep(time.Until(next) + 30*time.Second)
		synctest.Wait()
		runs := ranRuns(t, f.svc, "every1")
		if len(runs) != before+1 || runs[0].Status != pipeline.RunRunning {
			t.Fatalf("a run should be going on: %d runs (before %d), newest %+v", len(runs), before, runs[0])
		}
		_, err = f.svc.Run(ctx, "every1", pipeline.TriggerManual)
		var busy *pipeline.BusyError
		if !errors.As(err, &busy) || busy.Run.ID != runs[0].ID || busy.Run.Trigger != pipeline.TriggerSchedule {
			t.Fatalf("manual run during a scheduled one: %v", err)
		}
		time.Sleep(45 * time.Second) // the next tick comes while the run goes on
		synctest.Wait()
		if got := ranRuns(t, f.svc, "every1"); len(got) != before+1 {
			t.Fatalf("a tick during a run made another run: %d runs, want %d", len(got), before+1)
		}
		f.emu.SetFaults(0, 0, 0, 0, 0)
		done, err := f.svc.Wait(ctx, runs[0].ID)
		if err != nil || done.Status != pipeline.RunSucceeded {
			t.Fatalf("the long run: %v %+v", err, done)
		}

		// Downtime: three hours without a scheduler, then one run at start.
		stop(t, f.svc)
		before = len(ranRuns(t, f.svc, "every1"))
		time.Sleep(3 * time.Hour)
		svc2 := reopen(t, f, pipeline.Options{Schedules: true, PollInterval: 10 * time.Second})
		synctest.Wait()
		time.Sleep(time.Until(every.Schedule.Next(time.Now())) - time.Second) // up to just before the next tick
		synctest.Wait()
		if got := len(ranRuns(t, svc2, "every1")); got != before+1 {
			t.Fatalf("after 3h down: %d new scheduled runs, want 1", got-before)
		}
	})
}

// countTicks counts the ticks of s in (from, to].
func countTicks(from, to time.Time, s pipeline.Schedule) int {
	n := 0
	for t := s.Next(from); !t.After(to); t = s.Next(t) {
		n++
	}
	return n
}
