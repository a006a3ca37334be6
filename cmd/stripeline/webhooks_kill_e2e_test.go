package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3/driver"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// TestKillServeBetweenReceivingAndCommitting kills a real `stripeline serve`
// with SIGKILL while it holds a webhook delivery it verified but whose rows
// it could not commit yet (the replica's write lock is held by the test):
// the delivery gets no answer, the emulator retries it as Stripe does, the
// restarted server applies it, and the replica ends equal to the account
// with the event applied once.
func TestKillServeBetweenReceivingAndCommitting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	emu, err := emulator.New(emulator.Config{Seed: 13, Objects: 300, ConnectedAccounts: -1, TestClocks: -1,
		Webhooks: emulator.WebhookConfig{Retries: 12, Backoff: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	store := "sqlite://" + filepath.Join(dir, "store.db")
	replicaPath := filepath.Join(dir, "replica.db")
	env := append(os.Environ(), "STRIPE_API_KEY_LIVE=sk_test_live", "STRIPE_API_BASE="+srv.URL, "STRIPELINE_STORE="+store)
	stripeline := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("stripeline %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	stripeline("pipelines", "create", "live", "--dest", "sqlite://"+replicaPath, "--api-key-env", "STRIPE_API_KEY_LIVE", "--streams", "customers")
	stripeline("pipelines", "run", "live", "--wait")
	stripeline("webhooks", "setup", "--pipeline", "live", "--url", "http://"+addr+"/webhooks/live")
	serve := func() (*exec.Cmd, chan error, *strings.Builder) {
		cmd := exec.Command(bin, "serve", "--addr", addr)
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		return cmd, exited, &stderr
	}
	up := func(exited chan error, stderr *strings.Builder) {
		deadline := time.After(time.Minute)
		for {
			select {
			case err := <-exited:
				t.Fatalf("serve exited: %v\n%s", err, stderr)
			case <-deadline:
				t.Fatalf("serve did not come up:\n%s", stderr)
			case <-time.After(5 * time.Millisecond):
				if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
					res.Body.Close()
					if res.StatusCode == 200 {
						return
					}
				}
			}
		}
	}
	proc, exited, stderr := serve()
	up(exited, stderr)

	// Hold the replica's write lock: the delivery's transaction waits.
	lock, err := driver.Open("file:" + replicaPath + "?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lock.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := lock.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	id := gjson.GetBytes(emu.Objects("", "customers")[0], "id").Str
	form := url.Values{"metadata[kill]": {"survived"}, "name": {"Killed Mid Delivery"}}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/customers/"+id, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_live")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("update: %d %s", res.StatusCode, body)
	}
	// The delivery is in serve's hands, not answered: kill it there.
	deadline := time.After(time.Minute)
	for inFlight := false; !inFlight; {
		select {
		case <-deadline:
			t.Fatalf("the delivery never reached serve: %+v\n%s", emu.WebhookStats(), stderr)
		case <-time.After(2 * time.Millisecond):
			st := emu.WebhookStats()
			if st.Delivered > 0 {
				t.Fatalf("the delivery was answered 2xx with the replica locked: %+v", st)
			}
			inFlight = st.InFlight > 0
		}
	}
	_ = proc.Process.Signal(syscall.SIGKILL)
	<-exited
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	proc, exited, stderr = serve()
	up(exited, stderr)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := emu.WaitWebhooks(wctx); err != nil {
		t.Fatalf("deliveries did not settle: %v %+v\n%s", err, emu.WebhookStats(), stderr)
	}
	st := emu.WebhookStats()
	if st.Delivered != 1 || st.Failed == 0 || st.GaveUp != 0 {
		t.Errorf("emulator deliveries %+v: want the killed attempt failed and a retry delivered", st)
	}
	replica, err := dest.Open(ctx, "sqlite://"+replicaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if err := replicacheck.Compare(ctx, replica.(dest.Querier), emu, "", []string{"customers"}); err != nil {
		t.Fatal(err)
	}
	stats, err := replica.(dest.EventLog).EventStats(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Source != dest.SourceWebhook || stats[0].Count != 1 {
		t.Errorf("applied events %+v: want the one event, once, by webhook", stats)
	}
	out := stripeline("webhooks", "status", "--pipeline", "live")
	if !strings.Contains(out, "webhook    1 events applied") {
		t.Errorf("webhooks status:\n%s", out)
	}
	_ = proc.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr)
	}
}
