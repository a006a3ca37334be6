package pipeline_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// myDatabaseURL is a fresh database on STRIPELINE_TEST_MYSQL, dropped after
// the test ("" when the variable is unset).
func myDatabaseURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPELINE_TEST_MYSQL")
	if base == "" {
		return ""
	}
	dsn, _, err := mysql.DSN(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	// A random name: runs of the suite from other checkouts share the server.
	name := "stripeline_drop_" + rand.Text()[:12]
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS `" + name + "`")
		admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// TestDeleteDropsOnlyItsTables deletes, on each kind of destination, a
// pipeline with its tables while another pipeline of the store writes one
// of them on the same destination: its own tables, state and replica run
// history go, the shared table stays and the report names who keeps it.
func TestDeleteDropsOnlyItsTables(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	places := map[string]string{
		"sqlite": "sqlite://" + filepath.Join(dir, "replica.db"),
		"jsonl":  "jsonl://" + filepath.Join(dir, "files"),
	}
	if os.Getenv("STRIPELINE_TEST_POSTGRES") != "" {
		places["postgres"] = pgSchemaURL(t, "stripeline_drop_")
	}
	if u := myDatabaseURL(t); u != "" {
		places["mysql"] = u
	}
	for name, url := range places {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testDelete(t, url)
		})
	}
}

func testDelete(t *testing.T, destURL string) {
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	mine, theirs := f.pipeline("mine"), f.pipeline("theirs")
	mine.Dest, theirs.Dest = destURL, destURL
	mine.Streams, theirs.Streams = []string{"customers", "products"}, []string{"products", "prices"}
	for _, p := range []pipeline.Pipeline{mine, theirs} {
		if _, err := f.svc.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		run, err := f.svc.Run(ctx, p.Name, pipeline.TriggerManual)
		if err != nil {
			t.Fatal(err)
		}
		if done, err := f.svc.Wait(ctx, run.ID); err != nil || done.Status != pipeline.RunSucceeded {
			t.Fatalf("run of %s: %v %+v", p.Name, err, done)
		}
	}
	rep, err := f.svc.Delete(ctx, "mine", pipeline.DeleteOptions{DropTables: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Dropped, []string{"customers"}) || !slices.Equal(rep.Kept["products"], []string{"theirs"}) || rep.Runs != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := f.svc.Get(ctx, "mine"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("the pipeline is still there: %v", err)
	}
	d, err := dest.Open(ctx, destURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tables, err := d.(dest.Reader).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tables, "customers") || !slices.Contains(tables, "products") || !slices.Contains(tables, "prices") {
		t.Fatalf("tables after the drop: %v", tables)
	}
	if st, err := d.LoadState(ctx, "mine"); err != nil || len(st) != 0 {
		t.Fatalf("state of the deleted pipeline: %v %v", err, st)
	}
	if st, err := d.LoadState(ctx, "theirs"); err != nil || len(st) == 0 {
		t.Fatalf("state of the other pipeline: %v %v", err, st)
	}
	runs, err := d.Runs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Pipeline == "mine" {
			t.Fatalf("a run of the deleted pipeline is left: %+v", r)
		}
	}
}
