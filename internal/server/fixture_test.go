package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/server"
	"github.com/stripeline/stripeline/internal/stripe"
)

// testKey is the env:STRIPE_API_KEY_ACME key the fixture's service reads.
const testKey = "sk_test_fixture4242acme"

// testStreams keep a run to well under a second.
var testStreams = []string{"customers", "products", "prices"}

// fixture is a real server over a real pipelines service (SQLite control
// store, River workers) whose pipelines read the emulator.
type fixture struct {
	t       *testing.T
	svc     *pipeline.Service
	srv     *server.Server
	http    *httptest.Server
	emu     *emulator.Emulator
	emuURL  string
	dir     string
	token   string
	metrics *server.Metrics
}

type fixtureOpts struct {
	// noStart leaves the River workers stopped until fixture.start.
	noStart bool
	public  bool
	latency time.Duration
	// store is the control store's URL (default a SQLite file).
	store string
	// connected is the emulator's connected accounts (default none).
	connected int
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 5, Objects: 200, ConnectedAccounts: cmp.Or(o.connected, -1), ConnectedObjects: 60, TestClocks: -1, Latency: o.latency})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu)
	t.Cleanup(es.Close)
	dir := t.TempDir()
	if o.store == "" {
		o.store = "sqlite://" + filepath.Join(dir, "stripeline.db")
	}
	metrics := server.NewMetrics()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := pipeline.Open(context.Background(), pipeline.Options{
		Logger: log,
		Store:  o.store, KeyFile: filepath.Join(dir, "store.key"),
		Work: true, Schedules: true, PollInterval: 20 * time.Millisecond,
		OnRunEnd: metrics.ObserveRun,
		Getenv: func(name string) string {
			if name == "STRIPE_API_KEY_ACME" {
				return testKey
			}
			return ""
		},
		ClientOption: func(c *stripe.Config) {
			c.MaxBackoff = time.Millisecond
			c.GlobalRPS, c.EndpointRPS = 2000, 2000
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	srv, err := server.New(server.Options{Service: svc, Metrics: metrics, Public: o.public, Version: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	token, err := server.EnsureToken(context.Background(), server.ServiceTokens(svc))
	if err != nil || token == "" {
		t.Fatalf("first token %q, %v", token, err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	f := &fixture{t: t, svc: svc, srv: srv, http: hs, emu: emu, emuURL: es.URL, dir: dir, token: token, metrics: metrics}
	if !o.noStart {
		f.start()
	}
	return f
}

// start starts the service's workers and schedules.
func (f *fixture) start() {
	f.t.Helper()
	if err := f.svc.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.svc.Stop(ctx)
	})
}

// pipelineJSON is a valid create body for a pipeline reading the emulator.
func (f *fixture) pipelineJSON(name string) map[string]any {
	return map[string]any{
		"name":         name,
		"display_name": "Acme " + name,
		"connection":   map[string]any{"key_ref": "env:STRIPE_API_KEY_ACME", "api_base": f.emuURL},
		"dest":         "sqlite://" + filepath.Join(f.dir, name+".db"),
		"streams":      testStreams,
		"schedule":     "manual",
	}
}

// response is an answer of the server, its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// apiErr is the error body.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Run     int64  `json:"run"`
	} `json:"error"`
}

// do sends a request with the bearer token (unless auth is "") and body
// (a string is sent as it is, anything else as JSON).
func (f *fixture) do(method, path, auth string, body any) *response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	return f.send(req)
}

func (f *fixture) send(req *http.Request) *response {
	f.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// api sends an authenticated API request and checks the status.
func (f *fixture) api(method, path string, body any, want int) *response {
	f.t.Helper()
	r := f.do(method, path, f.token, body)
	if r.Status != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// create makes a pipeline through the API.
func (f *fixture) create(name string) map[string]any {
	f.t.Helper()
	var p map[string]any
	f.api("POST", "/api/v1/pipelines", f.pipelineJSON(name), http.StatusCreated).JSON(f.t, &p)
	return p
}

// runAndWait runs a pipeline through the API and waits for the run's end.
func (f *fixture) runAndWait(name string) *pipeline.Run {
	f.t.Helper()
	var run pipeline.Run
	f.api("POST", "/api/v1/pipelines/"+name+"/runs", nil, http.StatusAccepted).JSON(f.t, &run)
	done, err := f.svc.Wait(context.Background(), run.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return done
}

func serverRotate(ctx context.Context, f *fixture) (string, error) {
	return server.RotateToken(ctx, server.ServiceTokens(f.svc))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
