package pipeline_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/twoway"
)

func TestTwoWayPipelinePushesAndRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	p := f.pipeline("twoway")
	p.TwoWay = &twoway.Config{Streams: map[string][]string{"customers": {"email", "name"}}}
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	runOnce := func() *pipeline.Run {
		t.Helper()
		run, err := f.svc.Run(ctx, "twoway", pipeline.TriggerManual)
		if err != nil {
			t.Fatal(err)
		}
		done, err := f.svc.Wait(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}
	if r := runOnce(); r.Status != pipeline.RunSucceeded {
		t.Fatalf("first run %s: %s", r.Status, r.Error)
	}
	good := gjson.GetBytes(f.emu.Objects("", "customers")[0], "id").Str
	bad := gjson.GetBytes(f.emu.Objects("", "customers")[1], "id").Str
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(f.dir, "twoway.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []struct{ email, id string }{{"kept@example.com", good}, {"broken", bad}} {
		if _, err := db.Exec("UPDATE customers SET email = ? WHERE id = ?", q.email, q.id); err != nil {
			t.Fatal(err)
		}
	}
	r := runOnce()
	if r.Status != pipeline.RunFailed || r.ErrorKind != pipeline.KindStripe || !strings.Contains(r.Error, "Invalid email address") {
		t.Fatalf("run %s %s: %s, want failed for the refused row", r.Status, r.ErrorKind, r.Error)
	}
	if r.Attempt != 1 {
		t.Fatalf("a refused row was retried: attempt %d", r.Attempt)
	}
	got, err := f.svc.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TwoWay == nil || got.TwoWay.Updated != 1 || len(got.TwoWay.Rejected) != 1 || got.TwoWay.Rejected[0].Param != "email" {
		t.Fatalf("run record's two-way part: %+v", got.TwoWay)
	}
	for _, raw := range f.emu.Objects("", "customers") {
		if gjson.GetBytes(raw, "id").Str == good && gjson.GetBytes(raw, "email").Str != "kept@example.com" {
			t.Fatalf("the good row was not pushed: %s", raw)
		}
	}
	if r := runOnce(); r.Status != pipeline.RunSucceeded || r.TwoWay == nil || r.TwoWay.Held != 1 {
		t.Fatalf("third run %s %+v, want succeeded with the refused row held", r.Status, r.TwoWay)
	}
}

func TestTwoWayPipelineConfigNamesTheField(t *testing.T) {
	t.Parallel()
	c := &config.Config{Pipelines: []config.Pipeline{{Name: "acme", Dest: "sqlite://x.db",
		TwoWay: &config.TwoWay{Streams: map[string][]string{"prices": {"active", "unit_amount"}}}}}}
	_, err := pipeline.FromConfig(c, 0)
	var ce *config.ConfigError
	if !errors.As(err, &ce) || ce.Field != "pipelines[0].two_way" || !strings.Contains(err.Error(), "prices.unit_amount cannot be two-way") {
		t.Fatalf("error %v, want pipelines[0].two_way naming prices.unit_amount", err)
	}
}
