package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/stripe"
)

func TestCheckConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The probes are paced like any run; the emulator takes them faster.
	f := newFixture(t, pipeline.Options{ClientOption: func(c *stripe.Config) { c.GlobalRPS, c.EndpointRPS = 2000, 2000 }})
	rep, err := f.svc.CheckConnection(ctx, "", pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: f.base})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Account.ID == "" || rep.Mode != "test" || rep.Readable == 0 || strings.Contains(mustJSON(t, rep), "acme123") {
		t.Fatalf("report %+v", rep)
	}

	// A saved pipeline's stored key is used when the test gives none.
	p := f.pipeline("stored")
	p.Connection = pipeline.Connection{APIKey: stripe.Secret("sk_test_storedkey987654"), APIBase: f.base}
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	rep, err = f.svc.CheckConnection(ctx, "stored", pipeline.Connection{KeyRef: pipeline.KeyRefStored, APIBase: f.base})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Key.String() != "sk_test_…7654" {
		t.Fatalf("key in report %q, want the stored key redacted", rep.Key.String())
	}

	for _, c := range []struct {
		name string
		conn pipeline.Connection
	}{
		{"", pipeline.Connection{KeyRef: pipeline.KeyRefStored, APIBase: f.base}},
		{"", pipeline.Connection{KeyRef: "env:NOT_SET_ANYWHERE", APIBase: f.base}},
		{"", pipeline.Connection{APIKey: "not-a-key", APIBase: f.base}},
		{"", pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: "ftp://x"}},
	} {
		_, err := f.svc.CheckConnection(ctx, c.name, c.conn)
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("CheckConnection(%+v) = %v, want a *FieldError", c.conn, err)
		}
	}
}
