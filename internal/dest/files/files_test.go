package files_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest/files"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
)

func TestConformance(t *testing.T) {
	for _, scheme := range []string{"csv", "jsonl", "parquet"} {
		t.Run(scheme, func(t *testing.T) {
			var places desttest.Places
			desttest.RunWith(t, func(t *testing.T) dest.Destination {
				return places.Open(t, scheme+"://"+filepath.Join(t.TempDir(), "out"))
			}, desttest.Options{
				Caps:   desttest.Caps{Lock: true, FullRefresh: true, OnlyNewer: true, Drop: true},
				Reopen: places.Reopen,
				// A directory under a regular file cannot be made.
				OpenBroken: func(t *testing.T) func(context.Context) (dest.Destination, error) {
					file := filepath.Join(t.TempDir(), "plain-file")
					if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
					return func(ctx context.Context) (dest.Destination, error) {
						return dest.Open(ctx, scheme+"://"+filepath.Join(file, "out"))
					}
				},
				LockPerDestination: true,
			})
		})
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestGenerationsAndParts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := files.Open(ctx, files.JSONL, dir)
	if err != nil {
		t.Fatal(err)
	}
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}}}
	row := func(id string, n int64) dest.Row {
		return dest.Row{ID: id, Values: []any{id, n}, Raw: json.RawMessage(fmt.Sprintf(`{"id":%q,"n":%d}`, id, n))}
	}
	w := func(rows ...dest.Row) {
		t.Helper()
		if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: rows, SyncedAt: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	w(row("a", 1), row("b", 1))
	w(row("a", 2))
	w(dest.Row{ID: "b", Deleted: true})
	if diff := cmp.Diff([]string{"_stripeline_state.json", "customers.jsonl", "customers.part-000002.jsonl", "customers.part-000003.jsonl"}, names(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	rows, err := d.ReadRows(ctx, "customers")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r["id"].(string)] = fmt.Sprint(r["n"], " ", r[dest.ColDeleted])
	}
	if diff := cmp.Diff(map[string]string{"a": "2 false", "b": "1 true"}, got); diff != "" {
		t.Errorf("merged rows (-want +got):\n%s", diff)
	}
	// A full refresh starts a new generation: one base file again.
	if err := d.BeginFull(ctx, "customers"); err != nil {
		t.Fatal(err)
	}
	w(row("c", 3))
	if diff := cmp.Diff([]string{"_stripeline_state.json", "customers.jsonl"}, names(t, dir)); diff != "" {
		t.Errorf("files after a full refresh (-want +got):\n%s", diff)
	}
	// Reopening keeps the numbering and the columns.
	d2, err := files.Open(ctx, files.JSONL, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{row("d", 4)}}); err != nil {
		t.Fatal(err)
	}
	rows, err = d2.ReadRows(ctx, "customers")
	if err != nil || len(rows) != 2 {
		t.Fatalf("after reopen: %v rows, %v", rows, err)
	}
	if diff := cmp.Diff([]string{"_stripeline_state.json", "customers.jsonl", "customers.part-000005.jsonl"}, names(t, dir)); diff != "" {
		t.Errorf("files after reopen (-want +got):\n%s", diff)
	}
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := files.Open(ctx, files.CSV, dir)
	if err != nil {
		t.Fatal(err)
	}
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}}}
	err = d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{{ID: "a", Values: []any{"a", int64(1)}}, {ID: "b", Values: []any{"b", "not a number"}}},
		State: &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`1`)}})
	if err == nil {
		t.Fatal("a string in an integer column was accepted")
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("files left behind: %v", got)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	parent := t.TempDir()
	blocker := filepath.Join(parent, "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := dest.Open(context.Background(), "csv://"+filepath.Join(blocker, "out"))
	if err == nil {
		t.Fatal("a directory under a file was accepted")
	}
	if !strings.Contains(err.Error(), "csv://") || !strings.Contains(err.Error(), "choose a directory you can write to") {
		t.Errorf("error %q does not name the destination and the fix", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(parent, "ro")
		os.Mkdir(ro, 0o555)
		if _, err := dest.Open(context.Background(), "parquet://"+ro); err == nil {
			t.Error("a read-only directory was accepted")
		}
		if got := names(t, ro); len(got) != 0 {
			t.Errorf("files left in the read-only directory: %v", got)
		}
	}
}

// TestFullRefreshWithoutRows: a full refresh whose re-read finds nothing
// (only its checkpoint is written) leaves an empty table, in every format.
func TestFullRefreshWithoutRows(t *testing.T) {
	ctx := context.Background()
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}}}
	for _, format := range []string{files.CSV, files.JSONL, files.Parquet} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			d, err := files.Open(ctx, format, dir)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				id := fmt.Sprint("cus_", i)
				if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{{ID: id, Values: []any{id, int64(i)}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.BeginFull(ctx, "customers"); err != nil {
				t.Fatal(err)
			}
			// Another stream's checkpoint (the events cursor) does not start it.
			ev := &dest.State{Pipeline: "p", Stream: "_events", Cursor: json.RawMessage(`{"created":1}`)}
			if err := d.Write(ctx, &dest.Batch{Table: tb, State: ev}); err != nil {
				t.Fatal(err)
			}
			if rows, err := d.ReadRows(ctx, "customers"); err != nil || len(rows) != 2 {
				t.Errorf("the events cursor started the generation: %d rows, %v", len(rows), err)
			}
			st := &dest.State{Pipeline: "p", Stream: "customers", Cursor: json.RawMessage(`{"phase":"done"}`)}
			if err := d.Write(ctx, &dest.Batch{Table: tb, State: st}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"_stripeline_state.json", "customers." + format}, names(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			rows, err := d.ReadRows(ctx, "customers")
			if err != nil || len(rows) != 0 {
				t.Errorf("after an empty full refresh: %d rows, %v", len(rows), err)
			}
			// The next write appends to the new generation.
			if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{{ID: "cus_9", Values: []any{"cus_9", int64(9)}}}}); err != nil {
				t.Fatal(err)
			}
			if rows, err := d.ReadRows(ctx, "customers"); err != nil || len(rows) != 1 {
				t.Errorf("after one more row: %v, %v", rows, err)
			}
		})
	}
}

// TestOnlyNewerAfterReopen: the versions a conditional write compares
// with are read back from the files by a new destination, in every format.
func TestOnlyNewerAfterReopen(t *testing.T) {
	ctx := context.Background()
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}}}
	row := func(n, version int64) dest.Row {
		return dest.Row{ID: "cus_1", Values: []any{"cus_1", n}, Version: version, Raw: json.RawMessage(fmt.Sprintf(`{"id":"cus_1","n":%d}`, n))}
	}
	for _, format := range []string{files.CSV, files.JSONL, files.Parquet} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			write := func(r dest.Row) {
				t.Helper()
				d, err := files.Open(ctx, format, dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{r}, OnlyNewer: true}); err != nil {
					t.Fatal(err)
				}
			}
			write(row(5, 5))
			write(row(3, 3)) // older: not written
			write(row(6, 6))
			write(row(4, 4)) // older than the part: not written
			d, err := files.Open(ctx, format, dir)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := d.ReadRows(ctx, "customers")
			if err != nil || len(rows) != 1 || rows[0]["n"] != int64(6) || rows[0][dest.ColVersion] != int64(6) {
				t.Errorf("rows %v, %v; want n 6 at version 6", rows, err)
			}
			if got := names(t, dir); len(got) != 3 {
				t.Errorf("files %v: want the state, the base and one part (rows not newer are not written)", got)
			}
		})
	}
}

// TestRowsSnapshot: a read that has started sees the files it started
// with, even when a full refresh replaces them meanwhile.
func TestRowsSnapshot(t *testing.T) {
	ctx := context.Background()
	d, err := files.Open(ctx, files.CSV, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tb := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "n", Type: catalog.TypeInteger}}}
	w := func(ids ...string) {
		t.Helper()
		var rows []dest.Row
		for _, id := range ids {
			rows = append(rows, dest.Row{ID: id, Values: []any{id, int64(1)}})
		}
		if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: rows}); err != nil {
			t.Fatal(err)
		}
	}
	w("a", "b")
	w("c")
	var got []string
	for row, err := range d.Rows(ctx, "customers") {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, row["id"].(string)); len(got) == 1 {
			if err := d.BeginFull(ctx, "customers"); err != nil {
				t.Fatal(err)
			}
			w("z")
		}
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("rows read across a full refresh (-want +got):\n%s", diff)
	}
	rows, err := d.ReadRows(ctx, "customers")
	if err != nil || len(rows) != 1 || rows[0]["id"] != "z" {
		t.Errorf("after the refresh: %v, %v; want z alone", rows, err)
	}
}

// FuzzCSVRoundTrip: any text and null written to a csv:// destination
// read back as it was (quotes, commas, line breaks, leading spaces, the
// empty string apart from null), through the hand-written CSV reader.
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "a,b", `"quoted"`, "line\nbreak", "cr\r\nlf", `""`, ",", "\"a\"\"b\"", "ünï 🚀", "\t"} {
		f.Add(s, s+"x", false)
	}
	f.Add("", "", true)
	tb := dest.Table{Name: "t", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "a", Type: catalog.TypeString}, {Name: "b", Type: catalog.TypeString}}}
	f.Fuzz(func(t *testing.T, a, b string, null bool) {
		ctx := context.Background()
		d, err := files.Open(ctx, files.CSV, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var bv any = b
		if null {
			bv = nil
		}
		if err := d.Write(ctx, &dest.Batch{Table: tb, Rows: []dest.Row{{ID: "r", Values: []any{"r", a, bv}}}}); err != nil {
			t.Fatal(err)
		}
		rows, err := d.ReadRows(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0]["a"] != a || rows[0]["b"] != bv {
			t.Errorf("wrote a=%q b=%v, read %v", a, bv, rows)
		}
	})
}
