package cli

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/ops"
)

// searchColumns are the table columns of each searchable stream (id first).
var searchColumns = map[string][]string{
	"charges":         {"id", "amount", "currency", "status", "customer", "created"},
	"customers":       {"id", "email", "name", "created"},
	"invoices":        {"id", "customer", "status", "total", "currency", "created"},
	"payment_intents": {"id", "amount", "currency", "status", "customer", "created"},
	"prices":          {"id", "product", "unit_amount", "currency", "active", "type"},
	"products":        {"id", "name", "active", "created"},
	"subscriptions":   {"id", "customer", "status", "created"},
}

func newSearchCmd(a *App) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "search STREAM QUERY",
		Short: "Search a stream with Stripe's search query language (charges, customers, invoices, …)",
		Long: `search runs a query on one of the seven searchable streams (charges, customers,
invoices, payment_intents, prices, products, subscriptions), following every page up to
--limit results, and prints a table (id and a few useful columns) or, with --format json,
the objects.

Search results lag writes by up to a minute (longer during incidents): an object
created or changed just now may be missing or stale. Use get for read-after-write.`,
		Example: `  stripeline search customers "email:'ann@example.com'"
  stripeline search customers "metadata['external_id']:'42'" --format json
  stripeline search charges "amount>1000 AND status:'succeeded'" --limit 500`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream, query := args[0], args[1]
			s, err := ops.LookupStream(stream)
			if err != nil {
				return usage(err)
			}
			if !s.Searchable {
				return usagef("stream %s cannot be searched: searchable streams are %s", s.Name, strings.Join(ops.SearchableStreams(), ", "))
			}
			if limit < 0 {
				return usagef("--limit %d: expected a positive number (0 for every result)", limit)
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			fmt.Fprintln(a.Stderr, "note: search results lag writes by up to a minute; use `stripeline get ID` for read-after-write")
			var objs []json.RawMessage
			err = ops.New(c, a.Logger()).Search(cmd.Context(), s.Name, query, limit, func(obj json.RawMessage) error {
				objs = append(objs, append(json.RawMessage(nil), obj...))
				return nil
			})
			if err != nil {
				return err
			}
			if a.Format == "json" {
				if objs == nil {
					objs = []json.RawMessage{}
				}
				return a.printJSON(objs)
			}
			cols := searchColumns[s.Name]
			if cols == nil {
				cols = []string{"id", "created"}
			}
			rows := make([][]string, len(objs))
			for i, o := range objs {
				r := make([]string, len(cols))
				for j, c := range cols {
					r[j] = cellValue(gjson.GetBytes(o, gjsonEscape(c)))
				}
				rows[i] = r
			}
			return writeSearchResults(a.Stdout, a.Format, cols, rows)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "most results to fetch, across pages (0: all)")
	return cmd
}

// writeSearchResults prints rows as CSV or an aligned table.
func writeSearchResults(w io.Writer, format string, cols []string, rows [][]string) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write(cols)
		_ = cw.WriteAll(rows)
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	clean := strings.NewReplacer("\t", " ", "\n", " ")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = clean.Replace(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// gjsonEscape escapes gjson's path syntax in a plain field name.
func gjsonEscape(s string) string {
	return strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`).Replace(s)
}
