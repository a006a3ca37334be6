package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
)

func newRollbackCmd(a *App) *cobra.Command {
	var (
		dstFlag string
		dryRun  bool
	)
	cmd := &cobra.Command{
		Use:   "rollback RUN",
		Short: "Return a replica's tables and cursors to their state before a run",
		Long: `rollback undoes run RUN and every later run of its pipeline: each row they
inserted is removed, each row they changed or flagged deleted gets its earlier
values back, and the pipeline's cursors are rewound, so the next sync re-applies
from there. Those runs are marked rolled_back in the run history and the
rollback is recorded as a run of its own. It all happens in one transaction: a
rollback that is interrupted leaves the replica as it was.

It is refused while a run of the pipeline holds its lock. --dry-run prints what
would change and changes nothing. RUN is an id from "stripeline runs".`,
		Example: `  stripeline runs --dest sqlite://stripeline.db
  stripeline rollback 20261201T101500Z-1a2b3c4d --dry-run
  stripeline rollback 20261201T101500Z-1a2b3c4d --dest postgres://localhost/replica`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run := strings.TrimSpace(args[0])
			if run == "" {
				return usagef("the run id is empty: name one from stripeline runs")
			}
			u := a.destURL(dstFlag)
			dst, err := a.openReplica(cmd.Context(), u)
			if err != nil {
				return err
			}
			defer dst.Close()
			res, err := history.Rollback(cmd.Context(), dst, run, history.RollbackOptions{DryRun: dryRun})
			if errors.Is(err, history.ErrNoHistory) {
				return usagef("--dest %s: %v", dest.Redact(u), err)
			}
			if err != nil {
				return err
			}
			return a.printRollback(res)
		},
	}
	cmd.Flags().StringVar(&dstFlag, "dest", "", "replica URL (default: config dest, else sqlite://stripeline.db)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change; change nothing")
	return cmd
}

// printRollback prints a rollback's result: JSON, or per table the rows
// restored, removed and re-created, then each row.
func (a *App) printRollback(res *history.Result) error {
	if a.Format == "json" {
		return a.printJSON(res)
	}
	w := a.Stdout
	switch {
	case res.Already:
		fmt.Fprintf(w, "run %s was rolled back already: nothing to do\n", res.Run)
		return nil
	case res.DryRun:
		fmt.Fprintf(w, "dry run: rolling back run %s of pipeline %s would undo %d run(s): %s\n", res.Run, res.Pipeline, len(res.Undone), strings.Join(res.Undone, ", "))
	default:
		fmt.Fprintf(w, "rolled back run %s of pipeline %s (rollback %s): undid %d run(s): %s\n", res.Run, res.Pipeline, res.ID, len(res.Undone), strings.Join(res.Undone, ", "))
	}
	counts := res.Counts()
	tables := make([]string, 0, len(counts))
	for t := range counts {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tRESTORED\tREMOVED\tRECREATED")
	for _, t := range tables {
		c := counts[t]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", t, c["restore"], c["remove"], c["recreate"])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.DryRun {
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nTABLE\tID\tACTION\tCOLUMNS")
		for _, c := range res.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Table, c.ID, c.Action, strings.Join(c.Columns, ","))
		}
		return tw.Flush()
	}
	return nil
}
