package postgres_test

import (
	"context"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/postgres"
)

func benchOpen(b *testing.B) dest.Destination {
	dsn, _ := withSchema(b, serverURL(b))
	d, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func BenchmarkInsert(b *testing.B) { desttest.BenchInsert(b, benchOpen) }
func BenchmarkUpdate(b *testing.B) { desttest.BenchUpdate(b, benchOpen) }
