package postgres_test

import (
	"context"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
)

func TestDropper(t *testing.T) {
	dsn, _ := withSchema(t, serverURL(t))
	d, err := dest.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	desttest.Dropper(t, d)
}
