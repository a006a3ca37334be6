package backup_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// benchReplica syncs an emulated account of n objects (every stream)
// into a fresh SQLite replica and returns it with its row count.
func benchReplica(b *testing.B, n int) (*emulator.Emulator, dest.Destination, string, int64, func()) {
	b.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 3, Objects: n, ConnectedAccounts: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	b.Cleanup(srv.Close)
	client, err := stripe.New(stripe.Config{Key: "sk_test_bench", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	u := "sqlite://" + filepath.Join(b.TempDir(), "replica.db")
	dst, err := dest.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dst.Close() })
	sync := func() {
		if _, err := engine.Sync(context.Background(), engine.Options{Client: client, Dest: dst, Pipeline: "main"}); err != nil {
			b.Fatal(err)
		}
	}
	sync()
	var rows int64
	tables, _ := dst.(dest.Reader).Tables(context.Background())
	for _, t := range tables {
		for _, err := range dst.(dest.Reader).Rows(context.Background(), t) {
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
	}
	return emu, dst, u, rows, sync
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// BenchmarkBackup measures, on replicas of 10k and 100k emulated objects
// (every stream): a full backup, an incremental one after changes to 1%
// of the customers, a restore into a new SQLite replica and a diff of the
// snapshot with the replica. rows/s counts the replica's rows.
func BenchmarkBackup(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			emu, dst, u, rows, sync := benchReplica(b, n)
			ctx := context.Background()
			b.Run("full", func(b *testing.B) {
				var bytes int64
				for i := 0; i < b.N; i++ {
					dir := b.TempDir()
					if _, err := backup.Create(ctx, backup.CreateOptions{Source: dst, SourceURL: u, Pipeline: "main", Dir: dir}); err != nil {
						b.Fatal(err)
					}
					bytes = dirBytes(dir)
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(bytes)/(1<<20), "MiB")
				b.ReportMetric(float64(rows), "rows")
			})
			dir := b.TempDir()
			base, err := backup.Create(ctx, backup.CreateOptions{Source: dst, SourceURL: u, Pipeline: "main", Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			cus := base.Manifest.Stream("customers").Rows
			if err := emu.Mutate("", "customers", int(cus/100), int(cus/100), int(cus/100)); err != nil {
				b.Fatal(err)
			}
			sync()
			b.Run("incremental-1pct", func(b *testing.B) {
				var stored int64
				var bytes int64
				for i := 0; i < b.N; i++ {
					// Each incremental backup sits on the same full one.
					idir := b.TempDir()
					if err := os.Symlink(base.Dir, filepath.Join(idir, base.Manifest.ID)); err != nil {
						b.Fatal(err)
					}
					s, err := backup.Create(ctx, backup.CreateOptions{Source: dst, SourceURL: u, Pipeline: "main", Dir: idir})
					if err != nil {
						b.Fatal(err)
					}
					stored = 0
					for _, sm := range s.Manifest.Streams {
						stored += sm.Stored + sm.Removed
					}
					bytes = dirBytes(s.Dir)
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(stored), "stored")
				b.ReportMetric(float64(bytes)/(1<<20), "MiB")
			})
			b.Run("restore-into-sqlite", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					into, err := dest.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "restored.db"))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := base.RestoreInto(ctx, backup.RestoreOptions{Into: into}); err != nil {
						b.Fatal(err)
					}
					into.Close()
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
			b.Run("diff-snapshot-replica", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := backup.Diff(ctx, backup.SnapshotSource{S: base}, backup.ReplicaSource{R: dst.(dest.Reader), URL: u}, backup.DiffOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		})
	}
}
