package cli_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/cli"
)

func TestStreamsJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, "streams", "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var streams []catalog.Stream
	if err := json.Unmarshal([]byte(out), &streams); err != nil {
		t.Fatalf("decode: %v\n%s", err, out[:min(len(out), 500)])
	}
	if len(streams) <= 100 {
		t.Errorf("%d streams, want > 100", len(streams))
	}
	byName := map[string]catalog.Stream{}
	children := 0
	for _, s := range streams {
		byName[s.Name] = s
		if s.Parent != "" {
			children++
			if _, ok := byName[s.Parent]; !ok {
				t.Errorf("%s printed before its parent %s", s.Name, s.Parent)
			}
		}
		if len(s.Columns) == 0 {
			t.Errorf("%s: no columns in JSON", s.Name)
		}
	}
	if children < 20 {
		t.Errorf("%d child streams, want ≥ 20", children)
	}
	if got := byName["invoices_lines"]; got.Parent != "invoices" || got.EmbeddedField != "lines" {
		t.Errorf("invoices_lines: parent %q embedded %q", got.Parent, got.EmbeddedField)
	}
	if got := byName["subscriptions"]; got.ListParams["status"] != "all" {
		t.Errorf("subscriptions list params %v", got.ListParams)
	}
}

func TestStreamsTable(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, "streams")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "INCREMENTAL") {
		t.Errorf("header %q", lines[0])
	}
	var found bool
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "invoices_lines" {
			found = true
			if f[1] != "/v1/invoices/{invoice}/lines" || f[2] != "invoices" {
				t.Errorf("invoices_lines row %q", l)
			}
		}
	}
	if !found {
		t.Error("no invoices_lines row")
	}
	if want := len(catalog.All()); !strings.Contains(out, "\n"+strconv.Itoa(want)+" streams") {
		t.Errorf("no total line for %d streams", want)
	}
}

func TestStreamsOne(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, "streams", "--stream", "customers")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"GET /v1/customers", "customer.deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cols := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 4 {
			cols[f[0]] = f[1:]
		}
	}
	if got := strings.Join(cols["default_source"], " "); got != "string true true" {
		t.Errorf("default_source row %q", got)
	}
	if got := strings.Join(cols["metadata"], " "); got != "json false false" {
		t.Errorf("metadata row %q", got)
	}

	code, out, _ = run(t, "streams", "--stream", "invoices_lines", "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	var s catalog.Stream
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Name != "invoices_lines" || s.Parent != "invoices" {
		t.Errorf("json stream %+v (%v)", s, err)
	}

	code, _, errOut = run(t, "streams", "--stream", "nope")
	if code != cli.ExitUsage || !strings.Contains(errOut, "nope") {
		t.Errorf("unknown stream: exit %d, stderr %q", code, errOut)
	}
}
