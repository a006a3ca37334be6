package files_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/files"
)

func benchOpen(format string) desttest.BenchOpener {
	return func(b *testing.B) dest.Destination {
		d, err := files.Open(context.Background(), format, filepath.Join(b.TempDir(), "out"))
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
}

func BenchmarkInsert(b *testing.B) {
	for _, f := range []string{files.CSV, files.JSONL, files.Parquet} {
		b.Run(f, func(b *testing.B) { desttest.BenchInsert(b, benchOpen(f)) })
	}
}

func BenchmarkUpdate(b *testing.B) {
	for _, f := range []string{files.CSV, files.JSONL, files.Parquet} {
		b.Run(f, func(b *testing.B) { desttest.BenchUpdate(b, benchOpen(f)) })
	}
}
