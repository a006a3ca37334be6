package twoway_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

// The child process of TestKilledMidPushAppliesOnce: a two-way run that
// SIGKILLs itself once Stripe has answered its last write (the create),
// before the replica records that write and before the pull.
func TestKilledMidPushChild(t *testing.T) {
	base, destURL := os.Getenv("TWOWAY_CHILD_API"), os.Getenv("TWOWAY_CHILD_DEST")
	if base == "" {
		t.Skip("the child of TestKilledMidPushAppliesOnce")
	}
	c, err := stripe.New(stripe.Config{Key: "sk_test_twoway", APIBase: base, GlobalRPS: 100000, EndpointRPS: 100000})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dest.Open(context.Background(), destURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := newHarnessConfig()
	p, err := twoway.New(cfg, c, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Concurrency = 1
	var sent atomic.Int64
	p.SetAfterSend(func(string, string) error {
		if sent.Add(1) == 6 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	})
	engine.Sync(context.Background(), engine.Options{Client: c, Dest: d, Pipeline: "tw", Streams: streams, TwoWay: cfg.EngineFields(), Push: p})
	t.Fatalf("the run went on past its kill: %d writes", sent.Load())
}

func TestKilledMidPushAppliesOnce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			destURL, user, pg := b.open(t)
			h := newHarness(t, destURL)
			h.db, h.pg, h.backend = user, pg, b.name
			h.mustRun(t)
			var ids []string
			for i := range 5 {
				id := h.someID(t, "customers", i)
				ids = append(ids, id)
				h.exec(t, "UPDATE customers SET email = ? WHERE id = ?", "killed"+strconv.Itoa(i)+"@example.com", id)
			}
			h.exec(t, "INSERT INTO products (id, name) VALUES (NULL, ?)", "Killed Widget")
			cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidPushChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TWOWAY_CHILD_API="+h.base, "TWOWAY_CHILD_DEST="+destURL)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
			}
			// The lock dies with the child; MySQL ends a dead session's
			// GET_LOCK once it notices the connection closed, so wait for it.
			h.lockWait = time.Minute
			rep := h.mustRun(t)
			for _, id := range ids {
				if n := h.events("customer.updated", id); n != 1 {
					t.Fatalf("customer %s: %d updates in Stripe, want exactly 1 (report %+v)", id, n, rep)
				}
				if got := gjson.Get(h.object(t, "customers", id).Raw, "email").Str; got != h.row(t, "customers", id)["email"] {
					t.Fatalf("customer %s: Stripe %q, replica %v", id, got, h.row(t, "customers", id)["email"])
				}
			}
			if n := countNamed(h, "Killed Widget"); n != 1 {
				t.Fatalf("%d products created, want exactly 1", n)
			}
			h.assertConsistent(t)
			if rep := h.mustRun(t); rep.Updated+rep.Created != 0 {
				t.Fatalf("next run %+v, want nothing to push", rep)
			}
		})
	}
}
