package mysql_test

import (
	"context"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
)

func TestDropper(t *testing.T) {
	d, err := dest.Open(context.Background(), withDatabase(t, serverURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	desttest.Dropper(t, d)
}
