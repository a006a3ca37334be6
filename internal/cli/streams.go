package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/catalog"
)

func newStreamsCmd(a *App) *cobra.Command {
	var one string
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the catalog: every stream's endpoint, parent, cursor, incremental method and deletability",
		Long: `streams prints the catalog generated from Stripe's OpenAPI spec: one stream (one replica
table) per list endpoint. --format json prints every field of every stream; --stream NAME prints
one stream's columns (with --format json: the whole stream).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if one != "" {
				s, ok := catalog.Lookup(one)
				if !ok {
					return usagef("no stream %q: `stripeline streams` lists them", one)
				}
				return a.printStreamColumns(s)
			}
			return a.printStreams(catalog.All())
		},
	}
	cmd.Flags().StringVar(&one, "stream", "", "show one stream's columns")
	return cmd
}

func (a *App) printStreams(streams []catalog.Stream) error {
	if a.Format == "json" {
		return a.printJSON(streams)
	}
	header := []string{"name", "endpoint", "parent", "cursor", "incremental", "deletable", "columns"}
	rows := make([][]string, 0, len(streams))
	for _, s := range streams {
		parent := s.Parent
		if parent != "" && s.ParentInQuery {
			parent += " (?" + s.ParentParam + "=)"
		}
		rows = append(rows, []string{s.Name, s.Path, parent, s.Cursor, s.Incremental, strconv.FormatBool(s.Deletable), strconv.Itoa(len(s.Columns))})
	}
	if err := writeTable(a.Stdout, a.Format, header, rows); err != nil {
		return err
	}
	if a.Format == "table" {
		_, err := fmt.Fprintf(a.Stdout, "\n%d streams (Stripe API %s)\n", len(streams), catalog.SpecVersion())
		return err
	}
	return nil
}

func (a *App) printStreamColumns(s catalog.Stream) error {
	if a.Format == "json" {
		return a.printJSON(s)
	}
	if a.Format == "table" {
		w := a.Stdout
		fmt.Fprintf(w, "stream       %s\nendpoint     GET %s\nobject       %s\n", s.Name, s.Path, strings.Join(s.ObjectTypes, ", "))
		if s.Parent != "" {
			where := "path"
			if s.ParentInQuery {
				where = "query"
			}
			fmt.Fprintf(w, "parent       %s (%s parameter %s)\n", s.Parent, where, s.ParentParam)
		}
		if s.EmbeddedField != "" {
			fmt.Fprintf(w, "embedded in  %s.%s\n", s.Parent, s.EmbeddedField)
		}
		fmt.Fprintf(w, "incremental  %s (cursor %q, created filter %v)\n", s.Incremental, s.Cursor, s.Created)
		fmt.Fprintf(w, "deletable    %v", s.Deletable)
		if s.DeleteEvent != "" {
			fmt.Fprintf(w, " (event %s)", s.DeleteEvent)
		}
		fmt.Fprintln(w)
		if len(s.ListParams) > 0 {
			keys := make([]string, 0, len(s.ListParams))
			for k := range s.ListParams {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "list param   %s=%s\n", k, s.ListParams[k])
			}
		}
		if len(s.RequiredParams) > 0 {
			fmt.Fprintf(w, "needs        %s (not supplied by any stream)\n", strings.Join(s.RequiredParams, ", "))
		}
		if len(s.EventTypes) > 0 {
			fmt.Fprintf(w, "events       %s\n", strings.Join(s.EventTypes, ", "))
		}
		fmt.Fprintln(w)
	}
	rows := make([][]string, 0, len(s.Columns))
	for _, c := range s.Columns {
		rows = append(rows, []string{c.Name, string(c.Type), strconv.FormatBool(c.Nullable), strconv.FormatBool(c.Expandable)})
	}
	return writeTable(a.Stdout, a.Format, []string{"column", "type", "nullable", "expandable"}, rows)
}

// writeTable prints rows as an aligned table or as CSV.
func writeTable(w io.Writer, format string, header []string, rows [][]string) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		if err := cw.Write(header); err != nil {
			return err
		}
		if err := cw.WriteAll(rows); err != nil {
			return err
		}
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
