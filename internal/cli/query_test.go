package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all"
)

// replica writes two customers (one deleted) into a fresh destination.
func replica(t *testing.T, rawURL string) {
	t.Helper()
	ctx := context.Background()
	d, err := dest.Open(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tb := dest.Table{Name: "customers", Columns: []dest.Column{
		{Name: "id", Type: catalog.TypeString}, {Name: "balance", Type: catalog.TypeInteger},
		{Name: "email", Type: catalog.TypeString}, {Name: "metadata", Type: catalog.TypeJSON},
	}}
	if err := d.Migrate(ctx, tb); err != nil {
		t.Fatal(err)
	}
	rows := []dest.Row{
		{ID: "cus_b", Values: []any{"cus_b", int64(-5), "b@example.com", json.RawMessage(`{"x": "1"}`)},
			Raw: json.RawMessage(`{"id":"cus_b","balance":-5,"email":"b@example.com","metadata":{"x":"1"}}`)},
		{ID: "cus_a", Values: []any{"cus_a", int64(10), "ä@example.com", nil}, Deleted: true,
			Raw: json.RawMessage(`{"id":"cus_a","balance":10,"email":"ä@example.com","metadata":null}`)},
	}
	if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: rows, SyncedAt: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
}

func TestQuery(t *testing.T) {
	t.Parallel()
	u := "sqlite://" + filepath.Join(t.TempDir(), "r.db")
	replica(t, u)
	code, out, errOut := run(t, "query", "SELECT id, balance, _stripeline_deleted FROM customers ORDER BY id", "--dest", u, "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "id,balance,_stripeline_deleted\ncus_a,10,true\ncus_b,-5,false\n"; out != want {
		t.Errorf("csv output:\n%s\nwant:\n%s", out, want)
	}
	code, out, errOut = run(t, "query", `SELECT id, metadata FROM customers WHERE id = 'cus_b'`, "--dest", u, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if diff := cmp.Diff([]map[string]any{{"id": "cus_b", "metadata": `{"x": "1"}`}}, got); diff != "" {
		t.Errorf("json output (-want +got):\n%s", diff)
	}
	code, out, _ = run(t, "query", "SELECT count(*) AS n FROM customers", "--dest", u)
	if code != 0 || !strings.Contains(out, "N") || !strings.Contains(out, "2") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	u := "sqlite://" + filepath.Join(t.TempDir(), "r.db")
	replica(t, u)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"query", "SELECT * FROM nope", "--dest", u}, 1, "no such table"},
		{[]string{"query", "DELETE FROM customers", "--dest", u}, 1, "query sqlite://"},
		{[]string{"query", "SELECT 1", "--dest", "csv://" + t.TempDir()}, 2, "cannot run SQL"},
		{[]string{"query", "SELECT 1", "--dest", "nope://x"}, 1, "not supported"},
		{[]string{"query", "--dest", u}, 2, "accepts 1 arg"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"sqlite", "jsonl"} {
		t.Run(src, func(t *testing.T) {
			dir := t.TempDir()
			u := src + "://" + filepath.Join(dir, "replica")
			if src == "sqlite" {
				u = "sqlite://" + filepath.Join(dir, "r.db")
			}
			replica(t, u)
			code, out, errOut := run(t, "export", "customers", "--format", "csv", "--dest", u)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := "id,balance,email,metadata,_stripeline_deleted,_stripeline_synced_at,_stripeline_account\n" +
				"cus_a,10,ä@example.com,,true,1700000000,\n" +
				`cus_b,-5,b@example.com,"{""x"":""1""}",false,1700000000,` + "\n"
			// The catalog orders customers' columns by name, id first.
			if diff := cmp.Diff(want, strings.ReplaceAll(out, `{""x"": ""1""}`, `{""x"":""1""}`)); diff != "" {
				t.Errorf("csv (-want +got):\n%s", diff)
			}
			code, out, errOut = run(t, "export", "customers", "--format", "jsonl", "--dest", u)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 || lines[1] != `{"id":"cus_b","balance":-5,"email":"b@example.com","metadata":{"x":"1"},"_stripeline_deleted":false,"_stripeline_synced_at":1700000000,"_stripeline_account":""}` {
				t.Errorf("jsonl:\n%s", out)
			}
			pq := filepath.Join(dir, "customers.parquet")
			code, _, errOut = run(t, "export", "customers", "--format", "parquet", "--dest", u, "--out", pq)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			f, err := os.Open(pq)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := parquet.NewReader(f)
			if r.NumRows() != 2 {
				t.Errorf("parquet has %d rows, want 2", r.NumRows())
			}
			var names []string
			for _, fl := range r.Schema().Fields() {
				names = append(names, fl.Name())
			}
			if !strings.Contains(strings.Join(names, ","), "balance") {
				t.Errorf("parquet columns %v", names)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := "sqlite://" + filepath.Join(dir, "r.db")
	replica(t, u)
	out := filepath.Join(dir, "x.csv")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"export", "nope", "--dest", u, "--out", out}, 1, "export nope"},
		{[]string{"export", "customers", "--dest", u, "--format", "xml"}, 2, "--format \"xml\""},
		{[]string{"export", "customers", "--dest", u, "--out", filepath.Join(dir, "missing", "x.csv")}, 1, "write "},
		{[]string{"export", "invoices_lines", "--from-stripe"}, 2, "export it from a replica"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "r.db" && !strings.HasPrefix(e.Name(), "r.db-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
