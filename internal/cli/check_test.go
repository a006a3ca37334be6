package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/cli"
	"github.com/stripeline/stripeline/internal/stripe"
)

const checkKey = "sk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"

// fakeStripe answers /v1/account and lists; /v1/charges is forbidden to the key.
func fakeStripe(t *testing.T, wantKey string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_check")
		if r.Header.Get("Authorization") != "Bearer "+wantKey {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: %s"}}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			return
		}
		switch r.URL.Path {
		case "/v1/account":
			io.WriteString(w, `{"id":"acct_1Check","object":"account","settings":{"dashboard":{"display_name":"Acme Rockets"}}}`)
		case "/v1/charges":
			w.WriteHeader(403)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"The provided key 'rk_test_***abcd' does not have the required permissions for this endpoint on account 'acct_1Check'. Having the 'rak_charge_read' permission would allow this request to continue."}}`)
		default:
			if r.URL.Query().Get("limit") != "1" {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":{"type":"invalid_request_error","param":"limit","message":"probe without limit=1"}}`)
				return
			}
			fmt.Fprintf(w, `{"object":"list","url":%q,"has_more":false,"data":[]}`, r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func topLevelStreams() map[string]bool {
	m := map[string]bool{}
	for _, s := range catalog.All() {
		if s.Parent == "" && s.ParentParam == "" {
			m[s.Name] = true
		}
	}
	return m
}

func TestCheckSucceeds(t *testing.T) {
	t.Parallel()
	srv := fakeStripe(t, checkKey)
	code, out, errOut := runCLI(t, srv.URL, checkKey, "check")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"acct_1Check (Acme Rockets)", "mode            test", "secret key sk_test_…abcd", srv.URL, catalog.SpecVersion()} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, checkKey) {
		t.Error("output contains the full key")
	}

	code, out, errOut = runCLI(t, srv.URL, checkKey, "check", "--format", "json")
	if code != 0 {
		t.Fatalf("json: exit %d, stderr %q", code, errOut)
	}
	var r struct {
		Account struct {
			ID          string
			DisplayName string `json:"display_name"`
		}
		Mode, KeyType, Key, APIBase, StripeVersion string
		Readable, Forbidden, Errors                int
		Streams                                    []struct{ Name, Path, Access, Permission, Error string }
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if r.Account.ID != "acct_1Check" || r.Account.DisplayName != "Acme Rockets" || r.Key != "sk_test_…abcd" || r.Mode != "test" {
		t.Errorf("report = %+v", r)
	}
	top := topLevelStreams()
	if len(r.Streams) != len(top) {
		t.Errorf("probed %d streams, want the %d top-level catalog streams", len(r.Streams), len(top))
	}
	for _, s := range r.Streams {
		want := "readable"
		if s.Path == "/v1/charges" {
			want = "forbidden"
			if s.Permission != "rak_charge_read" {
				t.Errorf("charges permission = %q, want rak_charge_read", s.Permission)
			}
		}
		if s.Access != want {
			t.Errorf("stream %s access = %s (%s), want %s", s.Name, s.Access, s.Error, want)
		}
	}
	if r.Readable+r.Forbidden+r.Errors != len(r.Streams) || r.Errors != 0 {
		t.Errorf("counts readable %d forbidden %d errors %d for %d streams", r.Readable, r.Forbidden, r.Errors, len(r.Streams))
	}
}

// oneSentence checks stderr is a single line naming the problem.
func oneSentence(t *testing.T, errOut string, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 1 {
		t.Errorf("stderr has %d lines, want one:\n%s", len(lines), errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr = %q, want it to contain %q", errOut, want)
	}
}

func TestCheckBadKey(t *testing.T) {
	t.Parallel()
	srv := fakeStripe(t, checkKey)
	bad := "sk_test_51ZzZzZzZzZzZzZzZzZzZzZzZz9999999999wxyz"
	code, out, errOut := runCLI(t, srv.URL, bad, "check")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	oneSentence(t, errOut, "stripeline: Stripe rejected the API key sk_test_…wxyz (401): check the key (STRIPE_API_KEY)")
	if strings.Contains(out+errOut, bad) || strings.Contains(out+errOut, "9999999999") {
		t.Errorf("output contains the key: %s%s", out, errOut)
	}
}

func TestCheckMissingOrMalformedKey(t *testing.T) {
	t.Parallel()
	srv := fakeStripe(t, checkKey)
	for _, key := range []string{"", "pk_test_notasecretkey"} {
		code, _, errOut := runCLI(t, srv.URL, key, "check")
		if code != 1 {
			t.Errorf("key %q: exit %d, want 1", key, code)
		}
		oneSentence(t, errOut, "STRIPE_API_KEY")
		if key != "" && strings.Contains(errOut, key) {
			t.Errorf("stderr contains the key: %s", errOut)
		}
	}
}

// TestCheckUnreachable: check against a closed port says it cannot reach
// the base at the first failure, shows each retry, and ends with one
// sentence and exit 1.
func TestCheckUnreachable(t *testing.T) {
	t.Parallel()
	base := "http://" + freeAddr(t)
	env := cliEnv(t, base, checkKey, "check")
	cli.SetTestClientOption(&env, func(c *stripe.Config) { c.MaxBackoff = time.Millisecond })
	code, out, errOut := invoke(t, env)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{
		"level=WARN msg=\"cannot reach " + base + " (connection refused); retrying GET /v1/account, attempt 2 of 3 in ",
		"level=WARN msg=\"cannot reach " + base + " (connection refused); retrying GET /v1/account, attempt 3 of 3 in ",
		"stripeline: cannot reach Stripe at " + base + ": connection refused — check the API base URL (STRIPE_API_BASE) and the network (3 attempts)",
	}
	if len(lines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("stderr line %d = %q, want it to contain %q", i+1, lines[i], w)
		}
	}
	if strings.Contains(errOut, checkKey) {
		t.Error("stderr contains the key")
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestCheckAgainstStripeMock runs check against Stripe's official mock
// (go tool stripe-mock), skipping when it cannot be started.
func TestCheckAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := startStripeMock(t)
	code, out, errOut := runCLI(t, base, "sk_test_123", "check", "--format", "json")
	if code != 0 {
		t.Fatalf("check against stripe-mock: exit %d, stderr %s", code, errOut)
	}
	var r struct {
		Account struct{ ID string }
		Streams []struct{ Name, Access, Error string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if !strings.HasPrefix(r.Account.ID, "acct_") {
		t.Errorf("account id = %q, want acct_…", r.Account.ID)
	}
	readable := 0
	for _, s := range r.Streams {
		if s.Access == "readable" {
			readable++
		} else {
			t.Logf("stripe-mock: %s %s %s", s.Name, s.Access, s.Error)
		}
	}
	if want := len(topLevelStreams()); want > 0 && readable < want*9/10 {
		t.Errorf("stripe-mock: %d of %d streams readable", readable, want)
	}
}
