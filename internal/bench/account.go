package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stripeline/stripeline/internal/emulator"
)

// upstream is the emulated account a scenario syncs from: an emulator in
// this process, or one running elsewhere reached through its /_emulator/
// admin endpoints (--api-base).
type upstream interface {
	// URL is the API base.
	URL() string
	Counts(account string) map[string]int
	Objects(account, stream string) []json.RawMessage
	// ChildCounts is the number of children of a child stream per parent id.
	ChildCounts(account, stream string) map[string]int
	DeletedIDs(account, stream string) []string
	Mutate(account, stream string, creates, updates, deletes int) error
	SetFaults(latency time.Duration, rps, endpointRPS float64) error
	// Stats returns the emulator's counters.
	Stats() (emulator.Stats, error)
	Close() error
}

// local is an in-process emulator behind a loopback HTTP server.
type local struct {
	*emulator.Emulator
	srv *http.Server
	url string
}

func startLocal(cfg emulator.Config) (*local, error) {
	emu, err := emulator.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &local{Emulator: emu, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

func (l *local) URL() string { return l.url }

func (l *local) SetFaults(latency time.Duration, rps, endpointRPS float64) error {
	l.Emulator.SetFaults(latency, rps, endpointRPS, 0, 0)
	return nil
}

func (l *local) Stats() (emulator.Stats, error) { return l.Emulator.Stats(), nil }

func (l *local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.srv.Shutdown(ctx)
}

// remote is an emulator in another process (`stripeline emulator`).
type remote struct {
	base string
	hc   *http.Client
}

func newRemote(base string) *remote {
	return &remote{base: base, hc: &http.Client{Timeout: 10 * time.Minute}}
}

func (r *remote) URL() string { return r.base }

func (r *remote) admin(method, path string, args url.Values, out any) error {
	u := r.base + "/_emulator/" + path
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + args.Encode()
	} else {
		body = bytes.NewBufferString(args.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("emulator %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator %s: %s: %s", path, res.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("emulator %s: %w", path, err)
	}
	return nil
}

func (r *remote) Counts(account string) map[string]int {
	var m map[string]int
	_ = r.admin(http.MethodGet, "counts", url.Values{"account": {account}}, &m)
	return m
}

func (r *remote) Objects(account, stream string) []json.RawMessage {
	var objs []json.RawMessage
	_ = r.admin(http.MethodGet, "objects", url.Values{"account": {account}, "stream": {stream}}, &objs)
	return objs
}

func (r *remote) ChildCounts(account, stream string) map[string]int {
	var m map[string]int
	_ = r.admin(http.MethodGet, "children", url.Values{"account": {account}, "stream": {stream}}, &m)
	return m
}

// DeletedIDs is not served by the admin endpoints; deletions are not
// checked against a remote emulator.
func (r *remote) DeletedIDs(string, string) []string { return nil }

func (r *remote) Mutate(account, stream string, creates, updates, deletes int) error {
	return r.admin(http.MethodPost, "mutate", url.Values{"account": {account}, "stream": {stream},
		"creates": {strconv.Itoa(creates)}, "updates": {strconv.Itoa(updates)}, "deletes": {strconv.Itoa(deletes)}}, nil)
}

func (r *remote) SetFaults(latency time.Duration, rps, endpointRPS float64) error {
	return r.admin(http.MethodPost, "faults", url.Values{"latency": {latency.String()},
		"rps": {strconv.FormatFloat(rps, 'f', -1, 64)}, "endpoint_rps": {strconv.FormatFloat(endpointRPS, 'f', -1, 64)},
		"fail_rate": {"0"}, "drop_rate": {"0"}}, nil)
}

func (r *remote) Stats() (emulator.Stats, error) {
	var st emulator.Stats
	err := r.admin(http.MethodGet, "stats", nil, &st)
	return st, err
}

func (r *remote) Close() error { return nil }
