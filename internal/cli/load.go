package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/ops"
)

type loadFlags struct {
	mode        string
	maps        []string
	key         string
	dest        string
	dryRun      bool
	report      string
	concurrency int
	inputFormat string
	maxRPS      float64
}

// maxListedProblems bounds the per-row lines printed on stderr; the report
// has them all.
const maxListedProblems = 20

func newLoadCmd(a *App) *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load STREAM FILE",
		Short: "Create, update, upsert or delete many objects from a CSV or JSONL file",
		Long: `load sends one request per row of a CSV file (the header names the parameters, in
bracket notation: email,name,metadata[external_id],address[city]) or a JSONL file (one
object a line, flattened: {"items":[{"price":"p"}]} → items[0][price]). An "id" column
names the existing object (update, upsert, delete). Empty CSV cells are left out; in
JSONL, null sends "" (unset).

Every row is validated against the operation's request schema in Stripe's spec before
anything is sent: unknown parameters, types, enums, required ones, metadata limits
(50 keys, 40-character keys, 500-character values). Invalid rows are reported and not
sent; the valid ones are still loaded. Rows are numbered from 1 with the CSV header
not counted (JSONL: the line number).

Each row's request carries an idempotency key derived from the stream, the mode and the
row's content, so running the same file again (after a crash, say) never creates
duplicates: Stripe replays its first answer and the row counts as unchanged.

--mode upsert updates the object matching the row's id, or its --key value (found
with search, e.g. metadata['external_id']:'42', or in a replica given with --dest),
and creates it otherwise. Search lags writes by up to a minute.

The exit status is 1 when any row failed or was invalid.`,
		Example: `  stripeline load customers customers.csv --mode create --report out.csv
  stripeline load customers crm.csv --mode upsert --key metadata[external_id] --map crm_id=metadata[external_id]
  stripeline load customers changes.jsonl --mode update --dry-run
  stripeline load customers gone.csv --mode delete --concurrency 8`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runLoad(cmd.Context(), args[0], args[1], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", "", "create, update, upsert or delete (required)")
	fl.StringArrayVar(&f.maps, "map", nil, "rename a column to a parameter, col=param (repeatable; col= drops the column)")
	fl.StringVar(&f.key, "key", "", "parameter matching rows without an id to objects, e.g. metadata[external_id] or email")
	fl.StringVar(&f.dest, "dest", "", "replica to look --key values up in (sqlite://, postgres://, mysql://) instead of search")
	fl.BoolVar(&f.dryRun, "dry-run", false, "validate and print each row's request; send nothing")
	fl.StringVar(&f.report, "report", "", "write a CSV report (row,id,status,error) to this file")
	fl.IntVar(&f.concurrency, "concurrency", ops.DefaultConcurrency, "rows in flight at once (the request rate stays paced)")
	fl.StringVar(&f.inputFormat, "input-format", "", "csv or jsonl (default: from the file's extension)")
	fl.Float64Var(&f.maxRPS, "max-rps", 0, "global request rate (default: the client's, below Stripe's limits)")
	return cmd
}

func (a *App) runLoad(ctx context.Context, stream, file string, f loadFlags) error {
	switch f.mode {
	case ops.ModeCreate, ops.ModeUpdate, ops.ModeUpsert, ops.ModeDelete:
	case "":
		return usagef("--mode is required: create, update, upsert or delete")
	default:
		return usagef("--mode %q is not supported: use create, update, upsert or delete", f.mode)
	}
	if f.concurrency < 1 || f.concurrency > 64 {
		return usagef("--concurrency %d: expected 1 to 64", f.concurrency)
	}
	if f.dest != "" && f.key == "" {
		return usagef("--dest is used to look --key values up: give --key too")
	}
	if _, err := ops.LookupStream(stream); err != nil {
		return usage(err)
	}
	rows, err := a.readLoadFile(file, f)
	if err != nil {
		return err
	}

	opt := ops.LoadOptions{Stream: stream, Mode: f.mode, Key: f.key, DryRun: f.dryRun, Concurrency: f.concurrency}
	if f.dest != "" && !f.dryRun {
		finder, closeFn, err := a.openReplicaFinder(ctx, f.dest)
		if err != nil {
			return err
		}
		defer closeFn()
		opt.Finder = finder
	}
	if f.dryRun {
		opt.Plan = a.printPlan
	}

	var client ops.Client
	if f.dryRun {
		client = nil // a dry run sends nothing; it needs no key
	} else {
		c, err := a.Client(WithMaxRPS(f.maxRPS))
		if err != nil {
			return err
		}
		client = c
	}
	var prog loadProgress
	if !f.dryRun {
		if a.isTerminal(a.Stderr) {
			prog = newLoadBar(a.Stderr, stream)
		} else {
			prog = &loadLines{w: a.Stderr, name: "load " + stream}
		}
		opt.Progress = prog
	}
	res, loadErr := ops.New(client, a.Logger()).Load(ctx, rows, opt)
	if prog != nil {
		prog.Wait()
	}
	if res == nil {
		return usageOrErr(loadErr)
	}
	if f.report != "" {
		if err := ops.WriteReport(a.path(f.report), res.Results); err != nil {
			return err
		}
	}
	a.printLoadSummary(stream, f, res)
	if loadErr != nil {
		return loadErr
	}
	if !res.Summary.OK() {
		return fmt.Errorf("%d of %d rows were not loaded (%d failed, %d invalid, %d skipped); rows are numbered from 1, header excluded%s",
			res.Summary.Failed+res.Summary.Invalid+res.Summary.Skipped, len(res.Results), res.Summary.Failed, res.Summary.Invalid, res.Summary.Skipped, reportHint(f.report))
	}
	return nil
}

// readLoadFile reads every row of load's FILE ("-": stdin), its columns
// renamed by --map.
func (a *App) readLoadFile(file string, f loadFlags) ([]ops.Row, error) {
	mapping, err := ops.ParseMapping(f.maps)
	if err != nil {
		return nil, usage(err)
	}
	format := f.inputFormat
	if format == "" {
		if file == "-" {
			return nil, usagef("reading stdin: pass --input-format csv or jsonl")
		}
		if format, err = ops.DetectFormat(file); err != nil {
			return nil, usage(err)
		}
	}
	var in io.Reader = a.Stdin
	if file != "-" {
		fh, err := os.Open(a.path(file))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", file, err)
		}
		defer fh.Close()
		in = fh
	}
	rows, err := ops.ReadRows(in, format, mapping)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return rows, nil
}

// usageOrErr makes option errors found by ops (bad --key, a stream that
// cannot be written) usage errors.
func usageOrErr(err error) error {
	var fe *ops.FatalError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return usage(err)
}

func reportHint(report string) string {
	if report == "" {
		return " (pass --report FILE for every row)"
	}
	return "; see " + report
}

// openReplicaFinder opens --dest and wraps it for --key lookups.
func (a *App) openReplicaFinder(ctx context.Context, rawURL string) (ops.Finder, func(), error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, nil, usagef("--dest %q is not a destination URL (e.g. sqlite://stripeline.db)", dest.Redact(rawURL))
	}
	d, err := a.openDest(ctx, rawURL)
	if err != nil {
		return nil, nil, err
	}
	finder, err := ops.NewReplicaFinder(d, u.Scheme)
	if err != nil {
		d.Close()
		return nil, nil, usagef("--dest %s: %v", dest.Redact(rawURL), err)
	}
	return finder, func() { d.Close() }, nil
}

// printPlan prints one dry-run request on stdout.
func (a *App) printPlan(p ops.Plan) {
	if a.Format == "json" {
		params := make([][2]string, len(p.Params))
		for i, kv := range p.Params {
			params[i] = [2]string{kv.Key, kv.Value}
		}
		_ = a.printJSONLine(map[string]any{"row": p.Row, "method": p.Method, "path": p.Path, "params": params, "idempotency_key": p.IdempotencyKey, "note": p.Note})
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "row %d: %s %s", p.Row, p.Method, p.Path)
	for _, kv := range p.Params {
		fmt.Fprintf(&b, " %s=%s", kv.Key, quoteIfNeeded(kv.Value))
	}
	if p.Note != "" {
		fmt.Fprintf(&b, "  (%s)", p.Note)
	}
	fmt.Fprintln(a.Stdout, b.String())
}

func (a *App) printJSONLine(v any) error {
	return json.NewEncoder(a.Stdout).Encode(v)
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"'") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// printLoadSummary prints the counts on stdout and the first problem rows
// on stderr.
func (a *App) printLoadSummary(stream string, f loadFlags, res *ops.LoadResult) {
	if a.Format == "json" {
		var problems []ops.Result
		for _, r := range res.Results {
			if r.Status == ops.StatusFailed || r.Status == ops.StatusInvalid || r.Status == ops.StatusSkipped {
				problems = append(problems, r)
			}
		}
		type row struct {
			Row    int    `json:"row"`
			ID     string `json:"id,omitempty"`
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		}
		out := make([]row, len(problems))
		for i, p := range problems {
			out[i] = row{p.Row, p.ID, p.Status, p.Error}
		}
		s := res.Summary
		_ = a.printJSON(map[string]any{
			"stream": stream, "mode": f.mode, "dry_run": f.dryRun, "rows": len(res.Results),
			"created": s.Created, "updated": s.Updated, "deleted": s.Deleted, "unchanged": s.Unchanged,
			"failed": s.Failed, "invalid": s.Invalid, "planned": s.Planned, "skipped": s.Skipped,
			"row_numbering": "1-based data rows, header excluded", "problems": out,
		})
		return
	}
	listed := 0
	for _, r := range res.Results {
		if r.Status != ops.StatusFailed && r.Status != ops.StatusInvalid {
			continue
		}
		if listed == maxListedProblems {
			fmt.Fprintf(a.Stderr, "… more rows failed: see --report\n")
			break
		}
		fmt.Fprintf(a.Stderr, "row %d: %s: %s\n", r.Row, r.Status, r.Error)
		listed++
	}
	verb := "load"
	if f.dryRun {
		verb = "dry run"
	}
	fmt.Fprintf(a.Stdout, "%s %s (%s): %d rows: %s\n", verb, stream, f.mode, len(res.Results), res.Summary)
}

// loadProgress shows a load's progress on stderr.
type loadProgress interface {
	ops.Progress
	Wait()
}

// loadBar is an mpb progress bar for terminals.
type loadBar struct {
	p    *mpb.Progress
	bar  *mpb.Bar
	name string
}

func newLoadBar(w io.Writer, stream string) *loadBar {
	return &loadBar{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond)), name: "load " + stream}
}

func (b *loadBar) Start(total int) {
	b.bar = b.p.New(int64(total), mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(b.name+" "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageSpeed(0, "%.0f rows/s")))
}

func (b *loadBar) Row(ops.Result, ops.Summary) {
	if b.bar != nil {
		b.bar.Increment()
	}
}

func (b *loadBar) Wait() {
	if b.bar != nil && !b.bar.Completed() {
		b.bar.Abort(false)
	}
	b.p.Wait()
}

// loadLines prints a progress line every tenth of the rows, for logs.
type loadLines struct {
	w     io.Writer
	name  string
	total int
	done  int
}

func (l *loadLines) Start(total int) {
	l.total = total
	fmt.Fprintf(l.w, "%s: sending %d rows\n", l.name, total)
}

func (l *loadLines) Row(_ ops.Result, s ops.Summary) {
	l.done++
	if l.done == l.total || (l.done*10/max(l.total, 1)) != ((l.done-1)*10/max(l.total, 1)) {
		fmt.Fprintf(l.w, "%s: %d/%d rows (%s)\n", l.name, l.done, l.total, s)
	}
}

func (l *loadLines) Wait() {}
