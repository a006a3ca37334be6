package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
)

func newBackupCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Snapshots of a replica: create, list, verify, prune",
		Long: `backup keeps self-contained snapshots of a replica in a directory (DIR or file://DIR):
per stream the rows as zstd- (or gzip-) compressed JSONL, an index of every id and the
ids removed, and a manifest with the columns, row counts, sha256 checksums, the
pipeline's cursors, the time and the parent snapshot. The first snapshot of a pipeline
is full; the next ones store only the rows that changed since the latest one.
A snapshot appears whole or not at all: a crash leaves an incomplete temporary directory
that "backup list" shows and the next "backup create" removes.

Restore one with "stripeline restore SNAPSHOT --into DEST" or "--to-stripe"; compare
with "stripeline diff". A snapshot is named by its directory (DIR/ID) or DIR/latest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBackupCreateCmd(a), newBackupListCmd(a), newBackupVerifyCmd(a), newBackupPruneCmd(a))
	return cmd
}

type retentionFlags struct {
	keep   int
	maxAge time.Duration
}

func (r *retentionFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&r.keep, "keep", 0, "retention: keep the newest N snapshots of the pipeline (and the ones they depend on)")
	cmd.Flags().DurationVar(&r.maxAge, "max-age", 0, "retention: keep the snapshots younger than this, e.g. 720h (and the ones they depend on)")
}

func (r *retentionFlags) check() error {
	if r.keep < 0 {
		return usagef("--keep must be 0 or more, got %d", r.keep)
	}
	if r.maxAge < 0 {
		return usagef("--max-age must be positive, got %s", r.maxAge)
	}
	return nil
}

func newBackupCreateCmd(a *App) *cobra.Command {
	var (
		pipeline, dstFlag, to, compression string
		full                               bool
		streams                            []string
		ret                                retentionFlags
	)
	cmd := &cobra.Command{
		Use:   "create --to DIR",
		Short: "Write a snapshot of a replica (incremental after the first)",
		Example: `  stripeline backup create --to ./backups
  stripeline backup create --pipeline shop --dest postgres://… --to file:///var/backups/stripeline --keep 30
  stripeline backup create --to ./backups --full --compression gzip`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ret.check(); err != nil {
				return err
			}
			if to == "" {
				return usagef("--to is required: the backup directory, e.g. --to ./backups")
			}
			dir, err := backup.TargetDir(to)
			if err != nil {
				return usage(err)
			}
			switch compression {
			case backup.Zstd, backup.Gzip:
			default:
				return usagef("--compression %q is not supported: use zstd or gzip", compression)
			}
			pipe, u := a.backupPipeline(pipeline, dstFlag)
			ctx := cmd.Context()
			src, err := a.openReplica(ctx, u)
			if err != nil {
				return err
			}
			defer src.Close()
			snap, err := backup.Create(ctx, backup.CreateOptions{
				Source: src, SourceURL: u, Pipeline: pipe, Dir: a.path(dir), Compression: compression,
				Full: full, Streams: streams, Now: a.env.Now,
				Progress: func(s backup.StreamManifest) {
					a.Logger().Debug("backed up", "stream", s.Name, "rows", s.Rows, "stored", s.Stored, "removed", s.Removed)
				},
			})
			if err != nil {
				return err
			}
			var pruned []string
			if ret.keep > 0 || ret.maxAge > 0 {
				if pruned, err = backup.Prune(ctx, a.path(dir), backup.PruneOptions{Keep: ret.keep, MaxAge: ret.maxAge, Pipeline: pipe, Now: a.env.Now}); err != nil {
					return fmt.Errorf("snapshot %s written; retention: %w", snap.Manifest.ID, err)
				}
			}
			return a.printSnapshot(snap, pruned)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pipeline, "pipeline", "", "pipeline whose cursors go with the rows (default: the account, or \"default\"; a pipeline of the config file also gives the replica)")
	f.StringVar(&dstFlag, "dest", "", "replica URL (default: the pipeline's in the config, the config dest, else sqlite://stripeline.db)")
	f.StringVar(&to, "to", "", "backup directory: DIR or file://DIR (required)")
	f.StringVar(&compression, "compression", backup.Zstd, "compression of the data files: zstd|gzip")
	f.BoolVar(&full, "full", false, "write a full snapshot even when an incremental one could be written")
	f.StringSliceVar(&streams, "streams", nil, "only these streams (tables), comma separated (default: every table)")
	ret.add(cmd)
	return cmd
}

// backupPipeline picks the pipeline name and the replica: --pipeline, else
// the account, else "default"; --dest, else the config pipeline's dest,
// else the config's dest, else sqlite://stripeline.db.
func (a *App) backupPipeline(pipeline, dstFlag string) (string, string) {
	if pipeline == "" {
		pipeline = "default"
		if a.Account != "" {
			pipeline = a.Account
		}
	}
	if dstFlag == "" {
		for _, p := range a.cfg.Pipelines {
			if p.Name == pipeline && p.Dest != "" {
				return pipeline, p.Dest
			}
		}
	}
	return pipeline, a.destURL(dstFlag)
}

func (a *App) printSnapshot(s *backup.Snapshot, pruned []string) error {
	m := s.Manifest
	if a.Format == "json" {
		return a.printJSON(map[string]any{"id": m.ID, "dir": s.Dir, "pipeline": m.Pipeline, "parent": m.Parent, "created": m.Created, "streams": m.Streams, "pruned": pruned})
	}
	var rows, stored, removed, bytes int64
	for _, sm := range m.Streams {
		rows += sm.Rows
		stored += sm.Stored
		removed += sm.Removed
		for _, f := range sm.Files {
			bytes += f.Bytes
		}
	}
	kind := "full"
	if m.Incremental() {
		kind = "incremental on " + m.Parent
	}
	fmt.Fprintf(a.Stdout, "snapshot %s (%s) of pipeline %s: %d streams, %d rows, %d stored, %d removed, %s\n", m.ID, kind, m.Pipeline, len(m.Streams), rows, stored, removed, byteSize(bytes))
	fmt.Fprintf(a.Stdout, "in %s\n", s.Dir)
	for _, id := range pruned {
		fmt.Fprintf(a.Stdout, "pruned %s\n", id)
	}
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newBackupListCmd(a *App) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "list --to DIR",
		Short: "List the snapshots of a backup directory, incomplete ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to is required: the backup directory, e.g. --to ./backups")
			}
			dir, err := backup.TargetDir(to)
			if err != nil {
				return usage(err)
			}
			es, err := backup.List(a.path(dir))
			if err != nil {
				return err
			}
			if a.Format == "json" {
				if es == nil {
					es = []backup.Entry{}
				}
				return a.printJSON(es)
			}
			var rows [][]any
			for _, e := range es {
				created := ""
				if !e.Created.IsZero() {
					created = e.Created.UTC().Format(time.RFC3339)
				}
				rows = append(rows, []any{e.ID, e.Pipeline, e.Kind, created, e.Parent, e.Streams, e.Rows, e.Stored, e.Bytes, e.Problem})
			}
			return writeRows(a.Stdout, a.Format, []string{"id", "pipeline", "kind", "created", "parent", "streams", "rows", "stored", "bytes", "problem"}, rows)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "backup directory: DIR or file://DIR (required)")
	return cmd
}

func newBackupVerifyCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "verify SNAPSHOT",
		Short: "Check a snapshot's files (and its parents') against the manifest's sizes, sha256 and counts",
		Example: `  stripeline backup verify ./backups/20261202T053000.000000Z
  stripeline backup verify ./backups/latest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, err := backup.Open(a.path(args[0]))
			if err != nil {
				return err
			}
			probs, err := snap.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if a.Format == "json" {
				if probs == nil {
					probs = []backup.Problem{}
				}
				if err := a.printJSON(map[string]any{"snapshot": snap.Manifest.ID, "ok": len(probs) == 0, "problems": probs}); err != nil {
					return err
				}
			} else {
				for _, p := range probs {
					fmt.Fprintf(a.Stdout, "%s %s: %s\n", p.Snapshot, p.File, p.Problem)
				}
				if len(probs) == 0 {
					fmt.Fprintf(a.Stdout, "snapshot %s: every file matches its manifest\n", snap.Manifest.ID)
				}
			}
			if len(probs) > 0 {
				return fmt.Errorf("snapshot %s is damaged: %d files do not match their manifest; restore from another snapshot", snap.Manifest.ID, len(probs))
			}
			return nil
		},
	}
}

func newBackupPruneCmd(a *App) *cobra.Command {
	var (
		to, pipeline string
		dryRun       bool
		ret          retentionFlags
	)
	cmd := &cobra.Command{
		Use:   "prune --to DIR --keep N | --max-age DURATION",
		Short: "Remove old snapshots, never one that a kept snapshot depends on",
		Example: `  stripeline backup prune --to ./backups --keep 7
  stripeline backup prune --to ./backups --max-age 720h --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ret.check(); err != nil {
				return err
			}
			if ret.keep == 0 && ret.maxAge == 0 {
				return usagef("give a retention: --keep N and/or --max-age DURATION")
			}
			if to == "" {
				return usagef("--to is required: the backup directory, e.g. --to ./backups")
			}
			dir, err := backup.TargetDir(to)
			if err != nil {
				return usage(err)
			}
			removed, err := backup.Prune(cmd.Context(), a.path(dir), backup.PruneOptions{Keep: ret.keep, MaxAge: ret.maxAge, Pipeline: pipeline, DryRun: dryRun, Now: a.env.Now})
			if err != nil {
				return err
			}
			if a.Format == "json" {
				if removed == nil {
					removed = []string{}
				}
				return a.printJSON(map[string]any{"removed": removed, "dry_run": dryRun})
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			for _, id := range removed {
				fmt.Fprintf(a.Stdout, "%s %s\n", verb, id)
			}
			if len(removed) == 0 {
				fmt.Fprintln(a.Stdout, "nothing to remove")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "backup directory: DIR or file://DIR (required)")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline's snapshots (default: every pipeline)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed; remove nothing")
	ret.add(cmd)
	return cmd
}

// openReader opens a replica that must read back.
func (a *App) openReader(ctx context.Context, u string) (dest.Destination, dest.Reader, error) {
	d, err := a.openReplica(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	r, ok := d.(dest.Reader)
	if !ok {
		d.Close()
		return nil, nil, fmt.Errorf("%s cannot be read back", dest.Redact(u))
	}
	return d, r, nil
}
