package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/dest/sqlite"
)

func TestDropper(t *testing.T) {
	d, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	desttest.Dropper(t, d)
}
