package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/cli"
	"github.com/stripeline/stripeline/internal/stripe"
)

// addrWatcher is the stderr of a running `stripeline emulator`: it keeps
// what was written and hands over the base URL of the "listening on" line.
type addrWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	base chan string
}

var listeningRE = regexp.MustCompile(`emulator listening on (http://\S+) `)

func (w *addrWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := listeningRE.FindSubmatch(w.buf.Bytes()); m != nil {
			w.sent = true
			w.base <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *addrWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startEmulatorCLI runs `stripeline emulator --addr 127.0.0.1:0 args…` via
// cli.Run and returns the base URL it prints on stderr. The command is
// cancelled (and must exit 0) when the test ends.
func startEmulatorCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &addrWatcher{base: make(chan string, 1)}
	env := testEnv(t, nil, append([]string{"emulator", "--addr", "127.0.0.1:0"}, args...)...)
	env.Stdout, env.Stderr = io.Discard, stderr
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, env) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("emulator exited %d after cancellation: %s", code, stderr)
		}
	})
	select {
	case base := <-stderr.base:
		return base
	case code := <-done:
		done <- code
		t.Fatalf("emulator exited %d before listening: %s", code, stderr)
		return ""
	}
}

// TestEmulatorCLIServesPagedAccount serves a 20k-object account and pages
// its biggest list with limit=100 through the real client: every object
// the emulator holds arrives once, in order, with no gap.
func TestEmulatorCLIServesPagedAccount(t *testing.T) {
	t.Parallel()
	base := startEmulatorCLI(t, "--objects", "20000", "--seed", "5")

	var counts map[string]int
	getJSON(t, base+"/_emulator/counts", &counts)
	stream, most := "", 0
	for _, name := range []string{"customers", "charges", "invoices", "payment_intents", "balance_transactions"} {
		if counts[name] > most {
			stream, most = name, counts[name]
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total < 15000 || most < 1000 {
		t.Fatalf("account too small: %d objects, biggest list %s has %d: %v", total, stream, most, counts)
	}
	t.Logf("paging %s: %d objects of %d", stream, most, total)
	var objs []json.RawMessage
	getJSON(t, base+"/_emulator/objects?stream="+stream, &objs)
	want := make([]string, len(objs))
	for i, o := range objs {
		want[i] = gjson.GetBytes(o, "id").Str
	}

	c, err := stripe.New(stripe.Config{Key: "sk_test_emulatorcli0001", APIBase: base, GlobalRPS: 1000, EndpointRPS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	seen := map[string]bool{}
	path := "/v1/" + stream
	err = c.Each(context.Background(), path, url.Values{"limit": {"100"}}, func(obj json.RawMessage) error {
		id := gjson.GetBytes(obj, "id").Str
		if seen[id] {
			t.Fatalf("%s listed twice", id)
		}
		seen[id] = true
		got = append(got, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages := c.Stats().Requests; pages != int64((len(want)+99)/100) {
		t.Errorf("%d requests for %d objects at 100 a page", pages, len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("%s: listed %d, the emulator holds %d", stream, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s[%d] = %s, want %s", stream, i, got[i], want[i])
		}
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestEmulatorCLIRateLimit bursts 40 concurrent requests at `--rps 5`:
// those over the limit get Stripe's 429 (error.code rate_limit, the
// Stripe-Rate-Limited-Reason header), the others succeed.
func TestEmulatorCLIRateLimit(t *testing.T) {
	t.Parallel()
	base := startEmulatorCLI(t, "--objects", "500", "--rps", "5")
	const n = 40
	type answer struct {
		status       int
		code, reason string
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", base+"/v1/customers?limit=1", nil)
			req.Header.Set("Authorization", "Bearer sk_test_emulatorcli0002")
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			answers[i] = answer{resp.StatusCode, gjson.GetBytes(body, "error.code").Str, resp.Header.Get("Stripe-Rate-Limited-Reason")}
		})
	}
	close(start)
	wg.Wait()
	limited, ok := 0, 0
	for _, a := range answers {
		switch a.status {
		case 200:
			ok++
		case 429:
			limited++
			if a.code != "rate_limit" || a.reason == "" {
				t.Errorf("429 with error.code %q and Stripe-Rate-Limited-Reason %q", a.code, a.reason)
			}
		default:
			t.Errorf("status %d", a.status)
		}
	}
	if limited == 0 || ok == 0 {
		t.Errorf("%d of %d requests rate-limited, %d answered", limited, n, ok)
	}
}

// TestEmulatorCLIRefusesPublicAddr: a non-loopback --addr without
// --public is a usage error (exit 2) and nothing listens.
func TestEmulatorCLIRefusesPublicAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.10:12111", ":12111"} {
		code, _, stderr := run(t, "emulator", "--addr", addr, "--objects", "100")
		if code != 2 {
			t.Errorf("--addr %s: exit %d, want 2 (%s)", addr, code, stderr)
		}
		if !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, "--public") {
			t.Errorf("--addr %s: stderr %q", addr, stderr)
		}
	}
}
