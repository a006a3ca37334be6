package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/sqlite"
)

func benchOpen(b *testing.B) dest.Destination {
	d, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func BenchmarkInsert(b *testing.B) { desttest.BenchInsert(b, benchOpen) }
func BenchmarkUpdate(b *testing.B) { desttest.BenchUpdate(b, benchOpen) }
