package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all" // every destination scheme
	"github.com/stripeline/stripeline/internal/dest/files"
	"github.com/stripeline/stripeline/internal/engine"
)

func newExportCmd(a *App) *cobra.Command {
	var (
		dstFlag    string
		format     string
		out        string
		fromStripe bool
	)
	cmd := &cobra.Command{
		Use:   "export STREAM",
		Short: "Export one stream as CSV, JSONL or Parquet from a replica (or straight from Stripe)",
		Long: `export writes every row of one stream's table to stdout or --out FILE
(written atomically: the file appears whole or not at all). Rows come from the
replica at --dest (any destination, files included), sorted by id, with the
bookkeeping columns; --from-stripe lists the objects from the API instead.`,
		Example: `  stripeline export customers --format csv --dest sqlite://stripeline.db > customers.csv
  stripeline export invoices --format parquet --out invoices.parquet
  stripeline export products --format jsonl --from-stripe`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case files.CSV, files.JSONL, files.Parquet:
			default:
				return usagef("--format %q is not supported for export: use csv, jsonl or parquet", format)
			}
			if format == files.Parquet && out == "" && a.isTerminal(a.Stdout) {
				return usagef("parquet is binary: give --out FILE or redirect stdout")
			}
			stream := args[0]
			var (
				cols []dest.Column
				rows [][]any
				err  error
			)
			if fromStripe {
				cols, rows, err = a.exportFromStripe(cmd.Context(), stream)
			} else {
				cols, rows, err = a.exportFromReplica(cmd.Context(), a.destURL(dstFlag), stream)
			}
			if err != nil {
				return err
			}
			if out == "" {
				return files.WriteTable(a.Stdout, format, stream, cols, rows)
			}
			return writeFileAtomic(a.path(out), func(w io.Writer) error { return files.WriteTable(w, format, stream, cols, rows) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&dstFlag, "dest", "", "replica URL (default: config dest, else sqlite://stripeline.db)")
	f.StringVar(&format, "format", files.CSV, "output format: csv|jsonl|parquet")
	f.StringVarP(&out, "out", "o", "", "write to FILE (atomically) instead of stdout")
	f.BoolVar(&fromStripe, "from-stripe", false, "list the objects from the Stripe API instead of a replica")
	return cmd
}

// exportFromReplica reads the stream's table through dest.Reader; columns
// follow the catalog's order, then any others, then the bookkeeping ones.
func (a *App) exportFromReplica(ctx context.Context, u, stream string) ([]dest.Column, [][]any, error) {
	dst, err := a.openReplica(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	defer dst.Close()
	r, ok := dst.(dest.Reader)
	if !ok {
		return nil, nil, fmt.Errorf("--dest %s cannot be read back", dest.Redact(u))
	}
	maps, err := r.ReadRows(ctx, stream)
	if err != nil {
		return nil, nil, fmt.Errorf("export %s from %s: %w (has it been synced there?)", stream, dest.Redact(u), err)
	}
	present := map[string]bool{}
	for _, m := range maps {
		for k := range m {
			present[k] = true
		}
	}
	var cols []dest.Column
	seen := map[string]bool{}
	add := func(c dest.Column) {
		if !seen[c.Name] && present[c.Name] {
			seen[c.Name] = true
			cols = append(cols, c)
		}
	}
	if s, ok := catalog.Lookup(stream); ok {
		for _, c := range s.Columns {
			add(dest.Column{Name: c.Name, Type: c.Type})
		}
	}
	// The version rows were written from stays out of exports (it orders
	// webhooks; it is no field of the object).
	bk := map[string]catalog.Type{dest.ColDeleted: catalog.TypeBoolean, dest.ColSyncedAt: catalog.TypeInteger, dest.ColAccount: catalog.TypeString, dest.ColVersion: catalog.TypeInteger}
	var rest []string
	for k := range present {
		if !seen[k] && bk[k] == "" {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		add(dest.Column{Name: k, Type: inferType(maps, k)})
	}
	for _, k := range []string{dest.ColDeleted, dest.ColSyncedAt, dest.ColAccount} {
		add(dest.Column{Name: k, Type: bk[k]})
	}
	sort.Slice(maps, func(i, j int) bool { return fmt.Sprint(maps[i]["id"]) < fmt.Sprint(maps[j]["id"]) })
	rows := make([][]any, len(maps))
	for i, m := range maps {
		row := make([]any, len(cols))
		for j, c := range cols {
			row[j] = m[c.Name]
		}
		rows[i] = row
	}
	return cols, rows, nil
}

// inferType guesses a column's type from its first non-null value.
func inferType(rows []map[string]any, name string) catalog.Type {
	for _, m := range rows {
		switch m[name].(type) {
		case nil:
			continue
		case int64:
			return catalog.TypeInteger
		case float64:
			return catalog.TypeNumber
		case bool:
			return catalog.TypeBoolean
		case json.RawMessage:
			return catalog.TypeJSON
		default:
			return catalog.TypeString
		}
	}
	return catalog.TypeString
}

// exportFromStripe lists a top-level stream from the API and turns each
// object into the replica's columns, converted as a sync converts them.
func (a *App) exportFromStripe(ctx context.Context, stream string) ([]dest.Column, [][]any, error) {
	s, ok := catalog.Lookup(stream)
	if !ok {
		return nil, nil, usagef("unknown stream %q: see `stripeline streams`", stream)
	}
	if s.Parent != "" {
		return nil, nil, usagef("stream %s is listed per %s: export it from a replica instead of --from-stripe", stream, s.Parent)
	}
	client, err := a.Client()
	if err != nil {
		return nil, nil, err
	}
	conv := engine.NewConverter(s, nil)
	q := url.Values{}
	for k, v := range s.ListParams {
		q.Set(k, v)
	}
	var rows [][]any
	err = client.Each(ctx, s.Path, q, func(obj json.RawMessage) error {
		row, err := conv.Row(obj, "")
		if err != nil {
			return err
		}
		rows = append(rows, row.Values)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", stream, err)
	}
	return conv.Columns(), rows, nil
}

// writeFileAtomic writes path through a temp file in the same directory,
// fsynced and renamed, so the file appears whole or not at all.
func writeFileAtomic(path string, fn func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fn(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}
