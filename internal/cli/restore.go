package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/ops"
)

type restoreFlags struct {
	into        string
	pipeline    string
	streams     []string
	toStripe    bool
	dryRun      bool
	report      string
	concurrency int
	maxRPS      float64
}

func newRestoreCmd(a *App) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT (--into DEST | --to-stripe --streams a,b)",
		Short: "Rebuild a replica from a snapshot, or put the Stripe account back as it was",
		Long: `restore SNAPSHOT --into DEST writes the snapshot's rows into any destination (upserts by
id, so re-running it, also after a crash, leaves the same rows) and then the pipeline's
cursors, so a sync goes on from where the snapshot stood. Rows DEST holds that the
snapshot does not are left as they are: restore into an empty destination for a copy.
_stripeline_synced_at becomes the time of the restore.` + restoreStripeHelp,
		Example: `  stripeline restore ./backups/latest --into sqlite://restored.db
  stripeline restore ./backups/20261201T000000.000000Z --into postgres://…/replica --pipeline shop` + restoreStripeExample,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.into, "into", "", "destination URL to rebuild the replica in (sqlite://, postgres://, mysql://, csv://, jsonl://, parquet://)")
	fl.StringVar(&f.pipeline, "pipeline", "", "pipeline name of the restored cursors (default: the snapshot's)")
	fl.StringSliceVar(&f.streams, "streams", nil, "only these streams, comma separated (default with --into: every stream of the snapshot; required with --to-stripe)")
	addRestoreStripeFlags(cmd, &f)
	return cmd
}

func (a *App) runRestore(ctx context.Context, ref string, f restoreFlags) error {
	switch {
	case f.into != "" && f.toStripe:
		return usagef("give either --into DEST or --to-stripe, not both")
	case f.into == "" && !f.toStripe:
		return usagef("say where to restore: --into DEST (a replica) or --to-stripe (the account)")
	}
	snap, err := backup.Open(a.path(ref))
	if err != nil {
		return err
	}
	if f.toStripe {
		return a.restoreToStripe(ctx, snap, f)
	}
	if f.dryRun || f.report != "" {
		return usagef("--dry-run and --report go with --to-stripe")
	}
	into, err := a.openDest(ctx, f.into)
	if err != nil {
		return err
	}
	defer into.Close()
	res, err := snap.RestoreInto(ctx, backup.RestoreOptions{Into: into, Pipeline: f.pipeline, Streams: f.streams, Now: a.env.Now,
		Progress: func(stream string, rows int64) { a.Logger().Debug("restored", "stream", stream, "rows", rows) }})
	if err != nil {
		return err
	}
	if a.Format == "json" {
		return a.printJSON(res)
	}
	names := make([]string, 0, len(res.Streams))
	for s := range res.Streams {
		names = append(names, s)
	}
	sort.Strings(names)
	fmt.Fprintf(a.Stdout, "restored snapshot %s into %s: %d streams, %d rows, %d cursors of pipeline %s\n", snap.Manifest.ID, dest.Redact(f.into), len(names), res.Rows, res.Cursors, res.Pipeline)
	return nil
}

const restoreStripeHelp = `

restore SNAPSHOT --to-stripe --streams customers,products,prices,coupons puts the account's
objects of those streams back as the snapshot holds them: objects deleted since are
re-created (they get new ids: the old id goes into metadata[stripeline_restored_from] and
the report maps old to new), fields changed since are reverted when Stripe's update
endpoint takes them (metadata key by key: keys added since are unset), and fields Stripe
does not let change are listed in the report with the reason. Objects created since the
snapshot are left alone. Every request is validated against the spec's request schema
before the first one is sent, requests are paced and carry idempotency keys derived
from the snapshot and the object, and an object re-created by an earlier run is found
by its metadata mark: re-running a restore (after a crash, say) creates no duplicates,
and a restore after a complete one sends nothing. The exit status is 1 when any request
failed or was invalid.`

const restoreStripeExample = `
  stripeline restore ./backups/latest --to-stripe --streams customers,products,prices,coupons --dry-run
  stripeline restore ./backups/20261201T000000.000000Z --to-stripe --streams customers --report restore.csv`

func addRestoreStripeFlags(cmd *cobra.Command, f *restoreFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&f.toStripe, "to-stripe", false, "put the Stripe account back as the snapshot holds it (with --streams)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "with --to-stripe: plan and validate every request and print it; send nothing")
	fl.StringVar(&f.report, "report", "", "with --to-stripe: write a CSV report (stream,id,new_id,action,status,fields,not_restored,error) to this file")
	fl.IntVar(&f.concurrency, "concurrency", ops.DefaultConcurrency, "with --to-stripe: requests in flight at once (the request rate stays paced)")
	fl.Float64Var(&f.maxRPS, "max-rps", 0, "with --to-stripe: global request rate (default: the client's, below Stripe's limits)")
}

func (a *App) restoreToStripe(ctx context.Context, snap *backup.Snapshot, f restoreFlags) error {
	if f.pipeline != "" {
		return usagef("--pipeline goes with --into; a restore into Stripe has no cursors")
	}
	if f.concurrency < 1 || f.concurrency > 64 {
		return usagef("--concurrency %d: expected 1 to 64", f.concurrency)
	}
	if err := snap.CheckStripeStreams(f.streams); err != nil {
		return usage(err)
	}
	client, err := a.Client(WithMaxRPS(f.maxRPS))
	if err != nil {
		return err
	}
	opt := backup.StripeOptions{Lister: client, Streams: f.streams, DryRun: f.dryRun, Concurrency: f.concurrency}
	if !f.dryRun {
		opt.Ops = ops.New(client, a.Logger())
	}
	res, err := snap.RestoreToStripe(ctx, opt)
	if res != nil && f.report != "" {
		if werr := writeRestoreReport(a.path(f.report), res); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if a.Format == "json" {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else {
		a.printRestore(res)
	}
	if !res.Summary.OK() {
		return fmt.Errorf("%d of %d requests of the restore failed or were invalid%s", res.Summary.Failed+res.Summary.Invalid, len(res.Actions), reportHint(f.report))
	}
	return nil
}

func (a *App) printRestore(res *backup.StripeResult) {
	for _, act := range res.Actions {
		target := act.ID
		if act.NewID != "" {
			target += " → " + act.NewID
		}
		line := fmt.Sprintf("%s %s %s: %s", act.Stream, act.Action, target, act.Status)
		if len(act.Fields) > 0 {
			line += " [" + strings.Join(act.Fields, " ") + "]"
		}
		if act.Error != "" {
			line += ": " + act.Error
		}
		fmt.Fprintln(a.Stdout, line)
		for _, nr := range act.NotRestored {
			fmt.Fprintf(a.Stdout, "  not restored: %s: %s\n", nr.Field, nr.Reason)
		}
	}
	s := res.Summary
	verb := "restored"
	if res.DryRun {
		verb = "planned (dry run, nothing sent)"
	}
	var left []string
	for _, st := range slices.Sorted(maps.Keys(res.Left)) {
		if res.Left[st] > 0 {
			left = append(left, fmt.Sprintf("%s %d", st, res.Left[st]))
		}
	}
	fmt.Fprintf(a.Stdout, "snapshot %s %s: created %d, updated %d, planned %d, failed %d, invalid %d; %d fields not restorable",
		res.Snapshot, verb, s.Created, s.Updated, s.Planned, s.Failed, s.Invalid, s.NotRestored)
	if len(left) > 0 {
		fmt.Fprintf(a.Stdout, "; created since the snapshot and left alone: %s", strings.Join(left, ", "))
	}
	fmt.Fprintln(a.Stdout)
	if len(res.Actions) == 0 {
		fmt.Fprintln(a.Stdout, "the account already matches the snapshot: nothing sent")
	}
}

// writeRestoreReport writes one CSV line per action, atomically.
func writeRestoreReport(path string, res *backup.StripeResult) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"stream", "id", "new_id", "action", "status", "fields", "not_restored", "error"}); err != nil {
			return err
		}
		for _, act := range res.Actions {
			var nr []string
			for _, n := range act.NotRestored {
				nr = append(nr, n.Field+": "+n.Reason)
			}
			if err := cw.Write([]string{act.Stream, act.ID, act.NewID, act.Action, act.Status, strings.Join(act.Fields, " "), strings.Join(nr, "; "), act.Error}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
