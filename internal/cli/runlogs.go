package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// storeRuns lists the control store's runs when --store is given, or when
// --pipeline (without --dest) names a pipeline of the store. It reports
// whether it did.
func (a *App) storeRuns(cmd *cobra.Command, store, dstFlag, name string, limit int) (bool, error) {
	ctx := cmd.Context()
	if store == "" {
		if name == "" || dstFlag != "" || !a.storeExists() {
			return false, nil
		}
	}
	svc, err := a.openService(ctx, store, pipeline.Options{})
	if err != nil {
		return true, err
	}
	defer svc.Close()
	if store == "" {
		if _, err := svc.Get(ctx, name); err != nil {
			return false, nil // not a pipeline of the store: the replica's history
		}
	}
	runs, err := svc.Runs(ctx, pipeline.RunFilter{Pipeline: name, Limit: limit})
	if err != nil {
		return true, err
	}
	if a.Format == "json" {
		if runs == nil {
			runs = []*pipeline.Run{}
		}
		return true, a.printJSON(runs)
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tTRIGGER\tSTARTED\tSECONDS\tSTATUS\tATTEMPT\tROWS\tREQUESTS\tERROR")
	now := a.now()
	for _, r := range runs {
		started, secs := "-", ""
		if !r.Started.IsZero() {
			started = r.Started.UTC().Format("2006-01-02 15:04:05")
			secs = fmt.Sprintf("%.1f", r.Duration(now).Seconds())
		}
		errText := r.Error
		if r.ErrorKind != "" {
			errText = string(r.ErrorKind) + ": " + errText
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Pipeline, r.Trigger, started, secs, r.Status, r.Attempt, r.Rows, r.Requests, errText)
	}
	return true, tw.Flush()
}

// storeExists reports whether the default control store is there to read
// (a SQLite file that exists, or any other store URL).
func (a *App) storeExists() bool {
	u := a.storeURL("")
	path, ok := strings.CutPrefix(u, "sqlite://")
	if !ok {
		return true
	}
	_, err := os.Stat(path)
	return err == nil
}

func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("RUN %q is not a run id: use the number `stripeline runs --pipeline NAME` shows", s)
	}
	return id, nil
}

func newRunsShowCmd(a *App, store *string) *cobra.Command {
	var dstFlag string
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show one run of a pipeline: status, rows and requests per stream, notes, two-way conflicts and refusals, error",
		Long: `show prints one run: a pipeline's run of the control store (its number), or a
run of the replica's history (an id such as 20260102T030405Z-1a2b3c4d, from
"stripeline runs --dest URL" or a sync's output), with its two-way push:
what it wrote to Stripe, each conflict (stream, id, field, database and
Stripe values, winner) and each refused row.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isReplicaRunID(args[0]) {
				return a.showReplicaRun(cmd.Context(), dstFlag, args[0])
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			r, err := svc.GetRun(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.printRun(r)
		},
	}
	cmd.Flags().StringVar(&dstFlag, "dest", "", "replica URL, for a run of its history (default: config dest, else sqlite://stripeline.db)")
	return cmd
}

func newRunsLogsCmd(a *App, store *string) *cobra.Command {
	var (
		follow bool
		after  int64
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "logs RUN [--follow]",
		Short: "Print a run's log (its structured log lines); --follow streams a running run's to its end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			if follow {
				return a.followLog(cmd.Context(), a.Stdout, svc, id, after)
			}
			lines, err := svc.Logs(cmd.Context(), id, after, limit)
			if err != nil {
				return err
			}
			for _, l := range lines {
				a.printLogLine(a.Stdout, l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing lines as the run writes them, until it ends")
	cmd.Flags().Int64Var(&after, "after", 0, "only lines after this sequence number (paging)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "lines to print at most (without --follow)")
	return cmd
}

// followLog prints a run's lines as they come, until the run ends.
func (a *App) followLog(ctx context.Context, w io.Writer, svc *pipeline.Service, id, after int64) error {
	lines, err := svc.Follow(ctx, id, after)
	if err != nil {
		return err
	}
	for l := range lines {
		a.printLogLine(w, l)
	}
	return ctx.Err()
}

// printLogLine prints one line as logfmt: time, level, message, attributes.
func (a *App) printLogLine(w io.Writer, l pipeline.LogLine) {
	if a.Format == "json" {
		_ = json.NewEncoder(w).Encode(l)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s %q", l.Seq, l.Time.UTC().Format(time.RFC3339Nano), l.Level, l.Msg)
	keys := make([]string, 0, len(l.Attrs))
	for k := range l.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(l.Attrs[k])
		if strings.ContainsAny(v, " \"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	fmt.Fprintln(w, b.String())
}
