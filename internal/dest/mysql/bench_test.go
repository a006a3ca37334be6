package mysql_test

import (
	"context"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/mysql"
)

func benchOpen(b *testing.B) dest.Destination {
	d, err := mysql.Open(context.Background(), withDatabase(b, serverURL(b)))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func BenchmarkInsert(b *testing.B) { desttest.BenchInsert(b, benchOpen) }
func BenchmarkUpdate(b *testing.B) { desttest.BenchUpdate(b, benchOpen) }
