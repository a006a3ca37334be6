package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
)

func newDiffCmd(a *App) *cobra.Command {
	var (
		streams   []string
		updatable bool
		summary   bool
	)
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two snapshots, a snapshot and a replica, or a snapshot and the live account",
		Long: `diff compares side A with side B stream by stream: the objects added (in B only),
changed and removed (in A only, or flagged deleted in B), and for each changed object
the top-level fields that differ (metadata key by key), with both values and whether
Stripe's update endpoint takes the field. Each side is one of:

  a snapshot      DIR/ID, DIR/latest or file://DIR/ID (see "stripeline backup list")
  a replica       sqlite://…, postgres://…, mysql://…, csv://, jsonl://, parquet://
  stripe          the live account, listed through the API (top-level streams only)

Bookkeeping columns and the embedded first pages of child lists (customers' sources,
invoices' lines, …) are not compared; an object a restore re-created is paired with
the one it stands for by its metadata[stripeline_restored_from] and shown restored_as.
The exit status is 0 whether or not the sides differ.`,
		Example: `  stripeline diff ./backups/20261201T000000.000000Z ./backups/latest
  stripeline diff ./backups/latest sqlite://stripeline.db --format json
  stripeline diff ./backups/latest stripe --streams customers,products --format csv`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isLive(args[0]) && isLive(args[1]) {
				return usagef("diff: both sides are the live account: compare it with a snapshot or a replica")
			}
			ctx := cmd.Context()
			sa, closeA, err := a.diffSide(ctx, args[0])
			if err != nil {
				return err
			}
			defer closeA()
			sb, closeB, err := a.diffSide(ctx, args[1])
			if err != nil {
				return err
			}
			defer closeB()
			res, err := backup.Diff(ctx, sa, sb, backup.DiffOptions{Streams: streams})
			if err != nil {
				return err
			}
			if updatable {
				onlyUpdatable(res)
			}
			return a.printDiff(res, summary)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&streams, "streams", nil, "only these streams, comma separated (default: every stream of the sides)")
	f.BoolVar(&updatable, "updatable", false, "only the fields Stripe can update (what a restore --to-stripe can revert)")
	f.BoolVar(&summary, "summary", false, "only the counts per stream")
	return cmd
}

func isLive(arg string) bool { return arg == "stripe" || arg == "live" }

// diffSide opens one side of a diff.
func (a *App) diffSide(ctx context.Context, arg string) (backup.Source, func(), error) {
	nop := func() {}
	if isLive(arg) {
		c, err := a.Client()
		if err != nil {
			return nil, nil, err
		}
		return backup.LiveSource{Client: c}, nop, nil
	}
	if u, err := url.Parse(arg); err == nil && u.Scheme != "" && u.Scheme != "file" && slices.Contains(dest.Schemes(), u.Scheme) {
		d, r, err := a.openReader(ctx, arg)
		if err != nil {
			return nil, nil, err
		}
		return backup.ReplicaSource{R: r, URL: arg}, func() { d.Close() }, nil
	}
	snap, err := backup.Open(a.path(arg))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (a side of diff is a snapshot directory, a destination URL such as sqlite://stripeline.db, or stripe)", err)
	}
	return backup.SnapshotSource{S: snap}, nop, nil
}

// onlyUpdatable keeps the fields a restore can revert, and the objects
// that still differ then.
func onlyUpdatable(res *backup.DiffResult) {
	for i := range res.Streams {
		s := &res.Streams[i]
		var keep []backup.ObjectDiff
		s.Changed = 0
		for _, o := range s.Objects {
			if o.Change == backup.Changed {
				var fs []backup.FieldDiff
				for _, f := range o.Fields {
					if f.Updatable {
						fs = append(fs, f)
					}
				}
				if len(fs) == 0 {
					continue
				}
				o.Fields = fs
				s.Changed++
			}
			keep = append(keep, o)
		}
		s.Objects = keep
	}
}

func (a *App) printDiff(res *backup.DiffResult, summary bool) error {
	if summary {
		for i := range res.Streams {
			res.Streams[i].Objects = nil
		}
	}
	switch a.Format {
	case "json":
		return a.printJSON(res)
	case "csv":
		var rows [][]any
		for _, s := range res.Streams {
			if summary {
				rows = append(rows, []any{s.Stream, s.Added, s.Changed, s.Removed})
				continue
			}
			for _, o := range s.Objects {
				if len(o.Fields) == 0 {
					rows = append(rows, []any{s.Stream, o.ID, o.Change, o.RestoredAs, "", "", "", ""})
				}
				for _, f := range o.Fields {
					rows = append(rows, []any{s.Stream, o.ID, o.Change, o.RestoredAs, f.Field, string(f.A), string(f.B), f.Updatable})
				}
			}
		}
		if summary {
			return writeRows(a.Stdout, "csv", []string{"stream", "added", "changed", "removed"}, rows)
		}
		return writeRows(a.Stdout, "csv", []string{"stream", "id", "change", "restored_as", "field", "a", "b", "updatable"}, rows)
	}
	fmt.Fprintf(a.Stdout, "A: %s\nB: %s\n", res.A, res.B)
	var rows [][]any
	for _, s := range res.Streams {
		if s.Added+s.Changed+s.Removed > 0 {
			rows = append(rows, []any{s.Stream, s.Added, s.Changed, s.Removed})
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(a.Stdout, "no differences in %d streams\n", len(res.Streams))
		return nil
	}
	if err := writeRows(a.Stdout, "table", []string{"stream", "added", "changed", "removed"}, rows); err != nil {
		return err
	}
	if summary {
		return nil
	}
	fmt.Fprintln(a.Stdout)
	rows = nil
	for _, s := range res.Streams {
		for _, o := range s.Objects {
			id := o.ID
			if o.RestoredAs != "" {
				id += " (restored as " + o.RestoredAs + ")"
			}
			if len(o.Fields) == 0 {
				rows = append(rows, []any{s.Stream, id, o.Change, "", "", ""})
			}
			for _, f := range o.Fields {
				field := f.Field
				if !f.Updatable {
					field += " (not updatable)"
				}
				rows = append(rows, []any{s.Stream, id, o.Change, field, clipValue(string(f.A)), clipValue(string(f.B))})
			}
		}
	}
	return writeRows(a.Stdout, "table", []string{"stream", "id", "change", "field", "a", "b"}, rows)
}

func clipValue(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
