package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/ops"
)

func newGetCmd(a *App) *cobra.Command {
	var expand []string
	cmd := &cobra.Command{
		Use:   "get [STREAM] ID",
		Short: "Retrieve one object by id (the stream comes from the id's prefix, or name it)",
		Long: `get retrieves one object from Stripe and prints it as a key/value table (nested
values as JSON) or, with --format json, as Stripe sent it.

The stream is taken from the id's prefix (cus_ → customers, in_ → invoices, ch_ → charges,
pi_ → payment_intents, sub_ → subscriptions, prod_ → products, price_ → prices, …); ids
without a telling prefix (coupons, plans) need the stream: get coupons SUMMER25.`,
		Example: `  stripeline get cus_NffrFeUfNV2Hib
  stripeline get coupons SUMMER25
  stripeline get in_1MtHbELkdIwHu7ixl4OzzPMv --expand customer,subscription --format json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var stream, id string
			if len(args) == 2 {
				stream, id = args[0], args[1]
			} else {
				id = args[0]
				s, err := ops.StreamForID(id)
				if err != nil {
					return usage(err)
				}
				stream = s
			}
			if _, err := ops.LookupStream(stream); err != nil {
				return usage(err)
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			obj, err := ops.New(c, a.Logger()).Get(cmd.Context(), stream, id, splitList(expand))
			if err != nil {
				return err
			}
			return a.printObject(obj)
		},
	}
	cmd.Flags().StringSliceVar(&expand, "expand", nil, "fields to expand (expand[]), comma-separated, e.g. customer,latest_invoice")
	return cmd
}

// splitList trims and drops empty items of a comma-separated flag.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// printObject prints one Stripe object: indented JSON with --format json, a
// key,value CSV with --format csv, else a key/value table whose nested
// values are compact JSON.
func (a *App) printObject(raw []byte) error {
	if a.Format == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			_, err = a.Stdout.Write(append(raw, '\n'))
			return err
		}
		buf.WriteByte('\n')
		_, err := a.Stdout.Write(buf.Bytes())
		return err
	}
	var keys, vals []string
	gjson.ParseBytes(raw).ForEach(func(k, v gjson.Result) bool {
		keys = append(keys, k.String())
		vals = append(vals, cellValue(v))
		return true
	})
	if a.Format == "csv" {
		w := csv.NewWriter(a.Stdout)
		_ = w.Write([]string{"key", "value"})
		for i := range keys {
			_ = w.Write([]string{keys[i], vals[i]})
		}
		w.Flush()
		return w.Error()
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	for i := range keys {
		fmt.Fprintf(tw, "%s\t%s\n", keys[i], strings.NewReplacer("\t", " ", "\n", " ").Replace(vals[i]))
	}
	return tw.Flush()
}

// cellValue renders a JSON value for a table cell: strings bare, null
// empty, objects and arrays as compact JSON.
func cellValue(v gjson.Result) string {
	switch v.Type {
	case gjson.Null:
		return ""
	case gjson.String:
		return v.Str
	case gjson.JSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(v.Raw)); err == nil {
			return buf.String()
		}
		return v.Raw
	}
	return v.Raw
}
