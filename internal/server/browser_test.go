package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/pipeline"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "copy the browser test's pipeline page screenshot into docs/img for the README")

// chromium finds the browser the test drives, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("Chromium is not installed, so the UI's browser test is skipped: apt-get install chromium (.ci/run installs it)")
	return ""
}

// artifacts is where the test leaves its screenshots: $STRIPELINE_ARTIFACTS,
// or a folder of the system's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STRIPELINE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "stripeline-ui-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserCreateRunPauseDelete drives the UI in headless Chromium the
// way a person would: log in, create a pipeline in the form (streams and a
// field from the pickers, the connection tested), run it, watch the run
// succeed with its row counts and log, pause it, and delete it with its
// tables. It keeps screenshots of the list and the pipeline page.
func TestBrowserCreateRunPauseDelete(t *testing.T) {
	exe := chromium(t)
	f := newFixture(t, fixtureOpts{})
	shots := artifacts(t)
	destURL := "sqlite://" + filepath.Join(f.dir, "acme.db")

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The delete form asks for confirmation: accept it.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	fail := func(step string, err error) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		html, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s:\n%.3000s", step, err, loc, html)
	}
	// Each action gets its own deadline, so a failure says which one.
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := chromedp.Do(actx, a)
			cancel()
			if err != nil {
				fail(fmt.Sprintf("%s (action %d)", step, i+1), err)
			}
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			fail("read "+string(sel), err)
		}
		return v
	}
	shot := func(name string) string {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot "+name, err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
		return path
	}

	run("open the UI", chromedp.Navigate(f.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)))
	shot("login.png")
	run("log in",
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), f.token),
		chromedp.Submit(chromedp.CSS(`input[name=token]`)),
		chromedp.WaitVisible(`//h1[text()="Pipelines"]`),
	)
	shot("empty.png")

	run("fill in the form",
		chromedp.Click(chromedp.CSS(`a.btn.primary[href="/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "acme"),
		chromedp.SendKeys(chromedp.CSS(`input[name=display_name]`), "Acme Inc (test mode)"),
		chromedp.SetValue(chromedp.CSS(`input[name=key_env]`), "STRIPE_API_KEY_ACME"),
		chromedp.SendKeys(chromedp.CSS(`input[name=api_base]`), f.emuURL),
		chromedp.SendKeys(chromedp.CSS(`input[name=dest]`), destURL),
		chromedp.SendKeys(chromedp.CSS(`input[data-filter]`), "c"),
		chromedp.Click(chromedp.CSS(`input[name=streams][value=customers]`)),
		chromedp.Click(chromedp.CSS(`input[name=streams][value=products]`)),
		chromedp.Click(chromedp.CSS(`input[name=streams][value=prices]`)),
		chromedp.WaitVisible(`//span[@data-count][contains(., "3 of")]`),
		// The field picker lists a stream's columns from the catalog when opened.
		chromedp.Click(chromedp.CSS(`details[data-fields=customers] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="fields.customers"][value=email]`)),
		chromedp.Click(chromedp.CSS(`input[name="fields.customers"][value=id]`)),
		chromedp.Click(chromedp.CSS(`input[name="fields.customers"][value=email]`)),
		chromedp.Click(chromedp.CSS(`input[name="fields.customers"][value=created]`)),
		chromedp.SetValue(chromedp.CSS(`select[name=schedule_kind]`), "manual"),
		chromedp.Click(chromedp.CSS(`button[data-test-connection]`)),
		chromedp.WaitVisible(chromedp.CSS(`div.conn-result.ok`)),
	)
	if result := text(`div.conn-result`); !strings.Contains(result, "Connected to acct_") || !strings.Contains(result, "test mode") || !strings.Contains(result, "sk_test_…acme") {
		t.Fatalf("the connection test says %q", result)
	}
	shot("form.png")
	run("create the pipeline",
		chromedp.Click(`//button[text()="Create pipeline"]`),
		chromedp.WaitVisible(`//h1[text()="Acme Inc (test mode)"]`),
	)
	p, err := f.svc.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	fields := slices.Sorted(slices.Values(p.Fields["customers"]))
	if strings.Join(p.Streams, ",") != "customers,prices,products" || strings.Join(fields, ",") != "created,email,id" || !p.Schedule.IsManual() {
		t.Fatalf("the form made streams %v, fields %v, schedule %s", p.Streams, p.Fields, p.Schedule)
	}

	run("run it and watch it succeed",
		chromedp.Click(`//button[text()="Run now"]`),
		chromedp.WaitVisible(`//h1[starts-with(text(), "Run #")]`),
		chromedp.WaitVisible(chromedp.CSS(`.head .badge.b-succeeded`)),
		chromedp.WaitVisible(`//pre[contains(@class,"log")][contains(., "run succeeded")]`),
	)
	shot("run.png")
	rows, log := text(`#run-rows`), text(`pre.log`)
	done, err := f.svc.Runs(context.Background(), pipeline.RunFilter{Pipeline: "acme"})
	if err != nil || len(done) != 1 {
		t.Fatalf("runs %v, %v", done, err)
	}
	if rows != groupDigits(done[0].Rows) || done[0].Rows == 0 || !strings.Contains(log, "run started") {
		t.Fatalf("the run page shows %q rows (the run wrote %d) and the log:\n%s", rows, done[0].Rows, log)
	}
	customers := text(`#run-streams tr[data-stream=customers] td.rows`)
	if want := groupDigits(int64(len(f.emu.Objects("", "customers")))); customers != want {
		t.Fatalf("customers rows %q, want %s", customers, want)
	}

	// Two more runs, after changes in the account, give the plot a history.
	for _, n := range []int{9, 4} {
		if err := f.emu.Mutate("", "customers", n, n, 0); err != nil {
			t.Fatal(err)
		}
		if r := f.runAndWait("acme"); r.Status != pipeline.RunSucceeded || r.Rows == 0 {
			t.Fatalf("incremental run: %+v", r)
		}
	}
	run("open the pipeline",
		chromedp.Navigate(f.http.URL+"/pipelines/acme"),
		chromedp.WaitVisible(chromedp.CSS(`svg.plot rect`)),
	)
	pipelineShot := shot("pipeline.png")
	run("back to the list", chromedp.Navigate(f.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/pipelines/acme"]`)))
	shot("pipelines.png")

	run("pause it",
		chromedp.Navigate(f.http.URL+"/pipelines/acme"),
		chromedp.Click(`//button[text()="Pause"]`),
		chromedp.WaitVisible(chromedp.CSS(`.head .badge.b-paused`)),
		chromedp.WaitVisible(`//button[text()="Resume"]`),
	)
	if p, _ := f.svc.Get(context.Background(), "acme"); !p.Status.Paused {
		t.Fatal("the pause button did not pause the pipeline")
	}

	run("delete it with its tables",
		chromedp.Click(chromedp.CSS(`input[name=tables][value=drop]`)),
		chromedp.Click(`//button[text()="Delete pipeline"]`),
		chromedp.WaitVisible(`//h1[text()="Pipelines"]`),
		chromedp.WaitNotPresent(chromedp.CSS(`a[href="/pipelines/acme"]`)),
	)
	d, err := dest.Open(context.Background(), destURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, table := range []string{"customers", "products", "prices"} {
		_, err := d.(dest.Reader).ReadRows(context.Background(), table)
		if !errors.Is(err, dest.ErrNoTable) {
			t.Errorf("table %s: %v, want it dropped", table, err)
		}
	}

	if *updateScreenshot {
		b, err := os.ReadFile(pipelineShot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../docs/img/pipeline.png", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
