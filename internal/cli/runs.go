package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newRunsCmd(a *App) *cobra.Command {
	var (
		dstFlag  string
		pipeline string
		limit    int
		store    string
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List run history from a replica, or a pipeline's runs from the control store",
		Long: `runs lists the replica's run history (_stripeline_runs of --dest). With --store, or
with --pipeline naming a pipeline of the control store, it lists that store's runs
instead: trigger, status, attempts, rows, requests and the error's kind.
"runs logs RUN" prints a run's log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit <= 0 {
				return usagef("--limit must be positive, got %d", limit)
			}
			if done, err := a.storeRuns(cmd, store, dstFlag, pipeline, limit); done || err != nil {
				return err
			}
			dst, err := a.openDest(cmd.Context(), a.destURL(dstFlag))
			if err != nil {
				return err
			}
			defer dst.Close()
			runs, err := dst.Runs(cmd.Context(), pipeline, limit)
			if err != nil {
				return fmt.Errorf("read run history: %w", err)
			}
			if a.Format == "json" {
				return a.printJSON(runs)
			}
			tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTARTED\tSECONDS\tSTATUS\tROWS\tERROR")
			for _, r := range runs {
				secs := ""
				if !r.Finished.IsZero() {
					secs = fmt.Sprintf("%.1f", r.Finished.Sub(r.Started).Seconds())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Pipeline, r.Started.UTC().Format("2006-01-02 15:04:05"), secs, r.Status, runRows(r.Streams), r.Error)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dstFlag, "dest", "", "replica URL (default: config dest, else sqlite://stripeline.db)")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline")
	cmd.Flags().IntVar(&limit, "limit", 20, "most recent runs to show")
	cmd.PersistentFlags().StringVar(&store, "store", "", "control store URL of the pipelines (env STRIPELINE_STORE; default "+defaultStore+")")
	cmd.AddCommand(newRunsLogsCmd(a, &store), newRunsShowCmd(a, &store))
	return cmd
}

// runRows sums the rows of a run record's streams.
func runRows(raw json.RawMessage) int64 {
	var rec struct {
		Streams []struct {
			Rows int64 `json:"rows"`
		} `json:"streams"`
	}
	_ = json.Unmarshal(raw, &rec)
	var n int64
	for _, s := range rec.Streams {
		n += s.Rows
	}
	return n
}
