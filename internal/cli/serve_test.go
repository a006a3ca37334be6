package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/cli"
	"github.com/stripeline/stripeline/internal/emulator"
)

// lockedBuffer is an io.Writer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is a running `stripeline serve`.
type served struct {
	url    string
	stdout *lockedBuffer
	stderr *lockedBuffer
	stop   func() int
}

var servingLine = regexp.MustCompile(`msg=serving url=(http://\S+)/`)

// startServe runs `stripeline serve` in env until stop, and returns once
// it listens (its log says where).
func startServe(t *testing.T, env cli.Env, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &served{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	env.Args = append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	env.Stdout, env.Stderr = s.stdout, pw
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.Write([]byte(sc.Text() + "\n"))
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		close(urls)
	}()
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, env)
		pw.Close()
	}()
	u, ok := <-urls
	if !ok {
		cancel()
		t.Fatalf("serve ended before it listened: exit %d\n%s%s", <-code, s.stdout, s.stderr)
	}
	s.url = u
	var once sync.Once
	var exit int
	s.stop = func() int {
		once.Do(func() { cancel(); exit = <-code })
		return exit
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *served) request(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var tokenLine = regexp.MustCompile(`(?m)^\s+(stl_\S+)$`)

func TestServeRunsPipelinesBehindItsToken(t *testing.T) {
	emu, err := emulator.New(emulator.Config{Seed: 5, Objects: 200, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu)
	defer es.Close()
	env := testEnv(t, map[string]string{"STRIPE_KEY_ACME": "sk_test_servecli4242"})
	store := "sqlite://" + filepath.Join(env.Dir, "control.db")

	s := startServe(t, env, "--store", store)
	m := tokenLine.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("the first start printed no token:\n%s", s.stdout)
	}
	token := m[1]
	if strings.Contains(s.stderr.String(), token) {
		t.Fatal("the token is in the log")
	}
	if code, _ := s.request(t, "GET", "/api/v1/pipelines", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("API without the token: %d", code)
	}
	body := `{"name": "acme", "connection": {"key_ref": "env:STRIPE_KEY_ACME", "api_base": "` + es.URL + `"},
		"dest": "sqlite://` + filepath.Join(env.Dir, "acme.db") + `", "streams": ["customers"], "schedule": "manual"}`
	if code, out := s.request(t, "POST", "/api/v1/pipelines", token, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, out)
	}
	code, out := s.request(t, "POST", "/api/v1/pipelines/acme/runs", token, "")
	var run struct{ ID int64 }
	if code != http.StatusAccepted || json.Unmarshal([]byte(out), &run) != nil {
		t.Fatalf("run: %d %s", code, out)
	}
	// The followed log ends when the run does.
	_, stream := s.request(t, "GET", "/api/v1/runs/"+strconv.FormatInt(run.ID, 10)+"/logs?follow=1", token, "")
	if !strings.Contains(stream, `"status":"succeeded"`) {
		t.Fatalf("the run did not succeed:\n%s", stream)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d\n%s", code, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Fatalf("no shutdown in the log:\n%s", s.stderr)
	}

	// A second start on the store keeps the token and prints none.
	s = startServe(t, env, "--store", store)
	if strings.Contains(s.stdout.String(), "stl_") {
		t.Fatalf("a second start printed a token:\n%s", s.stdout)
	}
	if code, _ := s.request(t, "GET", "/api/v1/pipelines/acme", token, ""); code != http.StatusOK {
		t.Fatalf("the first token after a restart: %d", code)
	}
	s.stop()

	// serve token rotates it: the old one stops working.
	e := env
	e.Args = []string{"serve", "token", "--store", store}
	exit, rotated, errOut := invoke(t, e)
	rotated = strings.TrimSpace(rotated)
	if exit != 0 || !strings.HasPrefix(rotated, "stl_") || rotated == token {
		t.Fatalf("serve token: exit %d %q\n%s", exit, rotated, errOut)
	}
	s = startServe(t, env, "--store", store)
	if code, _ := s.request(t, "GET", "/api/v1/pipelines", token, ""); code != http.StatusUnauthorized {
		t.Fatalf("the old token after rotation: %d", code)
	}
	if code, _ := s.request(t, "GET", "/api/v1/pipelines", rotated, ""); code != http.StatusOK {
		t.Fatalf("the new token: %d", code)
	}
}

func TestServeRefusesAPublicAddressUnlessAsked(t *testing.T) {
	env := testEnv(t, nil, "serve", "--addr", "0.0.0.0:0", "--store", "sqlite://x.db")
	code, _, errOut := invoke(t, env)
	if code != 2 || !strings.Contains(errOut, "--public") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	env = testEnv(t, nil, "serve", "--workers", "0")
	if code, _, errOut := invoke(t, env); code != 2 || !strings.Contains(errOut, "--workers") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
