package dest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all"
)

// TestOpenBadURL checks that a URL that cannot be used is a setting error
// naming the dest setting, in the library's words (no flag), the password
// hidden.
func TestOpenBadURL(t *testing.T) {
	for _, raw := range []string{
		"stripeline.db",
		"nope://x",
		"sqlite://",
		"csv://",
		"mysql://root:hunter2@127.0.0.1:3306",
		"postgres://u:hunter2@127.0.0.1:5432/db?connect_timeout=x",
	} {
		_, err := dest.Open(context.Background(), raw)
		var se interface{ Setting() string }
		if !errors.As(err, &se) || se.Setting() != "dest" {
			t.Errorf("Open(%q) = %v, want an error whose Setting() is dest", raw, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "dest: ") || strings.Contains(msg, "--") || strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q) error %q: want it to start with the setting, name no flag and hide the password", raw, msg)
		}
	}
}
