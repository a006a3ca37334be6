package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func newPipelinesRunCmd(a *App, store *string) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "run NAME [--wait]",
		Short: "Run a pipeline now (refused while a run of it is queued or going on)",
		Long: `run enqueues a run of the pipeline for the server to work. With --wait it follows
the run to its end and exits 1 if it failed; when no server runs the schedules of
the store, this command works the run itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.openService(ctx, *store, pipeline.Options{Work: wait, Workers: 1})
			if err != nil {
				return err
			}
			defer svc.Close()
			run, err := svc.Run(ctx, args[0], pipeline.TriggerManual)
			if err != nil {
				return err
			}
			serving, err := svc.ServerRunning(ctx)
			if err != nil {
				return err
			}
			if !wait {
				if a.Format == "json" {
					return a.printJSON(run)
				}
				fmt.Fprintf(a.Stdout, "run %d of %s queued\n", run.ID, run.Pipeline)
				if !serving {
					fmt.Fprintln(a.Stderr, "no server is running on this store: the run starts when `stripeline serve` does (or use --wait to run it here)")
				}
				return nil
			}
			if !serving {
				// This process works the run; its log lines go to stderr
				// through the service's logger.
				if err := svc.Start(ctx); err != nil {
					return err
				}
				defer func() {
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
					defer cancel()
					svc.Stop(sctx)
				}()
			} else if err := a.followLog(ctx, a.Stderr, svc, run.ID, 0); err != nil {
				return err
			}
			done, err := svc.Wait(ctx, run.ID)
			if err != nil {
				return err
			}
			if err := a.printRun(done); err != nil {
				return err
			}
			if done.Status != pipeline.RunSucceeded {
				return fmt.Errorf("run %d of %s %s (%s): %s", done.ID, done.Pipeline, done.Status, done.ErrorKind, done.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run to its end (working it here when no server runs)")
	return cmd
}

// printRun prints one run: JSON, or its summary and streams.
func (a *App) printRun(r *pipeline.Run) error {
	if a.Format == "json" {
		return a.printJSON(r)
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMODE\tROWS\tREQUESTS\tNOTE")
	for _, s := range r.Streams {
		if s.Rows == 0 && s.Error == "" && s.Skipped == "" {
			continue
		}
		note := s.Error
		if note == "" {
			note = s.Skipped
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Stream, s.Mode, s.Rows, requestsCell(s.Requests), note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "run %d of %s %s (%s, attempt %d): %d rows, %d requests, %d events applied in %.1fs\n",
		r.ID, r.Pipeline, r.Status, r.Trigger, r.Attempt, r.Rows, r.Requests, r.Events, r.Duration(a.now()).Seconds())
	for _, n := range r.Notes {
		fmt.Fprintln(a.Stdout, "note: "+n)
	}
	if r.TwoWay != nil {
		writeTwoWayReport(a.Stdout, r.TwoWay)
	}
	if r.Error != "" {
		fmt.Fprintf(a.Stdout, "error (%s): %s\n", r.ErrorKind, r.Error)
	}
	return nil
}

func newPipelinesDeleteCmd(a *App, store *string) *cobra.Command {
	var keep, drop bool
	cmd := &cobra.Command{
		Use:   "delete NAME (--keep-tables | --drop-tables)",
		Short: "Delete a pipeline, keeping its replica tables or dropping them",
		Long: `delete removes the pipeline, its run history and logs, and its queued runs. Say
which of its replica tables go with it: --keep-tables leaves the replica as it is;
--drop-tables drops the tables it wrote (a file destination's files), its state and
its run history in the destination, but never a table another pipeline of the store
writes on the same destination (those are kept, and named).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep == drop {
				return usagef("--keep-tables or --drop-tables: say whether the pipeline's replica tables stay or go")
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			rep, err := svc.Delete(cmd.Context(), args[0], pipeline.DeleteOptions{DropTables: drop})
			if err != nil {
				return err
			}
			if a.Format == "json" {
				return a.printJSON(rep)
			}
			fmt.Fprintf(a.Stdout, "pipeline %s deleted with %d runs\n", rep.Pipeline, rep.Runs)
			if rep.KeptTables {
				fmt.Fprintln(a.Stdout, "its replica tables were kept")
			}
			if len(rep.Dropped) > 0 {
				fmt.Fprintf(a.Stdout, "dropped %d tables: %s\n", len(rep.Dropped), strings.Join(rep.Dropped, ", "))
			}
			for t, by := range rep.Kept {
				fmt.Fprintf(a.Stdout, "kept %s: pipeline %s writes it too\n", t, strings.Join(by, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-tables", false, "leave the replica's tables as they are")
	cmd.Flags().BoolVar(&drop, "drop-tables", false, "drop the tables the pipeline wrote, its state and run history (not tables another pipeline writes)")
	return cmd
}
