package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/stripe"
)

// defaultStore is the control store when neither --store nor
// STRIPELINE_STORE says otherwise: the default replica's own file.
const defaultStore = "sqlite://stripeline.db"

// storeURL picks --store, then STRIPELINE_STORE, then the default.
func (a *App) storeURL(flag string) string {
	u := flag
	if u == "" {
		u = a.getenv("STRIPELINE_STORE")
	}
	if u == "" {
		u = defaultStore
	}
	return a.localURL(u)
}

// openService opens the pipelines service on the control store.
func (a *App) openService(ctx context.Context, store string, opts pipeline.Options) (*pipeline.Service, error) {
	opts.Store = a.storeURL(store)
	opts.Logger = a.Logger()
	opts.Getenv = a.getenv
	if a.env.clientOption != nil {
		opts.ClientOption = a.env.clientOption
	}
	svc, err := pipeline.Open(ctx, opts)
	if err != nil {
		return nil, a.pipelineErr(err)
	}
	return svc, nil
}

// pipelineFlags are the flags that name a pipeline's settings.
var pipelineFlags = map[string]string{
	"name":          "NAME",
	"display_name":  "--display-name",
	"description":   "--description",
	"api_key":       "--api-key-env or --api-key-stdin",
	"account":       "--account",
	"accounts":      "--accounts",
	"platform_rps":  "--platform-rps",
	"api_base":      "--api-base",
	"proxy":         "proxy in the config file",
	"dest":          "--dest",
	"streams":       "--streams",
	"start_date":    "--start-date",
	"lookback_days": "--lookback-days",
	"window_days":   "--window-days",
	"schedule":      "--schedule",
	"max_rps":       "--max-rps",
	"endpoint_rps":  "--endpoint-rps",
	"concurrency":   "--concurrency",
	"store":         "--store",
}

// pipelineErr says a pipeline's setting error with the flag that sets it
// (a usage error), and passes other errors on.
func (a *App) pipelineErr(err error) error {
	var fe *pipeline.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	word, ok := pipelineFlags[fe.Field]
	if !ok {
		return usage(err)
	}
	msg := strings.TrimPrefix(fe.Error(), fe.Field+": ")
	return usagef("%s: %s", word, msg)
}

type pipelineFlagSet struct {
	displayName, description string
	keyEnv                   string
	keyStdin                 bool
	dest                     string
	streams                  []string
	fields                   []string
	startDate                string
	lookbackDays, windowDays int
	schedule                 string
	maxRPS, endpointRPS      float64
	concurrency              int
	accounts                 string
	platformRPS              float64
}

func (f *pipelineFlagSet) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.displayName, "display-name", "", "a name for people (default: the pipeline's name)")
	fl.StringVar(&f.description, "description", "", "what the pipeline is for")
	fl.StringVar(&f.keyEnv, "api-key-env", "", "read the Stripe key, at each run, from this environment variable of the service, e.g. STRIPE_API_KEY_ACME")
	fl.BoolVar(&f.keyStdin, "api-key-stdin", false, "read the Stripe key from stdin and store it encrypted (key file beside the store, mode 0600)")
	fl.StringVar(&f.dest, "dest", "", "destination URL, e.g. sqlite://stripe.db or postgres://host/db?schema=acme")
	fl.StringSliceVar(&f.streams, "streams", nil, `streams to sync, comma separated (default: all; see "stripeline streams")`)
	fl.StringArrayVar(&f.fields, "fields", nil, "columns to keep of one stream, STREAM=field,field (repeat per stream)")
	fl.StringVar(&f.startDate, "start-date", "", "only backfill objects created on or after this date (YYYY-MM-DD)")
	fl.IntVar(&f.lookbackDays, "lookback-days", 0, "re-read this many days before the created cursor of streams without events")
	fl.IntVar(&f.windowDays, "window-days", 0, "initial backfill slice size in days")
	fl.StringVar(&f.schedule, "schedule", "", `when it runs: "every 15m", "every 6h", "cron 0 * * * *" or "manual" (default manual)`)
	fl.Float64Var(&f.maxRPS, "max-rps", 0, "requests per second for the whole account (default by key mode)")
	fl.Float64Var(&f.endpointRPS, "endpoint-rps", 0, "requests per second per endpoint")
	fl.IntVar(&f.concurrency, "concurrency", 0, "requests kept in flight")
	fl.StringVar(&f.accounts, "accounts", "", `sync several accounts of a platform, each with its own River job and state: "all" (the platform and every connected account, discovered at each run), acct_… ids, -acct_… to leave one out of all ("" for one account)`)
	fl.Float64Var(&f.platformRPS, "platform-rps", 0, "with --accounts: requests per second of all the accounts together, across every worker (0: no cap but each account's --max-rps)")
}

// apply sets on p the settings whose flags were given (all of them for a
// new pipeline).
func (f *pipelineFlagSet) apply(a *App, cmd *cobra.Command, p *pipeline.Pipeline) error {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if changed("display-name") {
		p.DisplayName = f.displayName
	}
	if changed("description") {
		p.Description = f.description
	}
	if f.keyEnv != "" && f.keyStdin {
		return usagef("--api-key-env and --api-key-stdin: give one (a reference, or a key to store)")
	}
	if f.keyEnv != "" {
		p.Connection.KeyRef, p.Connection.APIKey = "env:"+f.keyEnv, ""
	}
	if f.keyStdin {
		key, err := bufio.NewReader(a.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the API key from stdin: %w", err)
		}
		p.Connection.KeyRef, p.Connection.APIKey = pipeline.KeyRefStored, stripe.Secret(strings.TrimSpace(key))
		if p.Connection.APIKey == "" {
			return usagef("--api-key-stdin: stdin holds no key: pipe it in, e.g. `printenv STRIPE_API_KEY | stripeline pipelines create …`")
		}
	}
	if a.cmd.Flags().Changed("account") || p.Created.IsZero() {
		p.Connection.Account = a.Account
	}
	if a.cmd.Flags().Changed("api-base") || p.Created.IsZero() {
		p.Connection.APIBase = a.APIBase
	}
	if p.Created.IsZero() && a.cfg != nil {
		p.Connection.Proxy = a.cfg.Proxy
	}
	if changed("dest") {
		p.Dest = a.localURL(f.dest)
	}
	if changed("streams") {
		p.Streams = f.streams
	}
	if changed("fields") {
		p.Fields = map[string][]string{}
		for _, spec := range f.fields {
			stream, cols, ok := strings.Cut(spec, "=")
			if !ok || stream == "" || cols == "" {
				return usagef("--fields %q: use STREAM=field,field, e.g. customers=id,email,created", spec)
			}
			p.Fields[stream] = strings.Split(cols, ",")
		}
	}
	if changed("start-date") {
		t, err := parseDate("--start-date", f.startDate)
		if err != nil {
			return err
		}
		p.StartDate = t
	}
	if changed("lookback-days") {
		p.LookbackDays = f.lookbackDays
	}
	if changed("window-days") {
		p.WindowDays = f.windowDays
	}
	if changed("schedule") {
		s, err := pipeline.ParseSchedule(f.schedule)
		if err != nil {
			return a.pipelineErr(err)
		}
		p.Schedule = s
	}
	if changed("max-rps") {
		p.MaxRPS = f.maxRPS
	}
	if changed("endpoint-rps") {
		p.EndpointRPS = f.endpointRPS
	}
	if changed("concurrency") {
		p.Concurrency = f.concurrency
	}
	if changed("accounts") {
		sel, err := fleet.ParseSelection(f.accounts)
		if err != nil {
			return usagef("--accounts: %v", err)
		}
		p.Connection.Accounts.Select = sel
	}
	if changed("platform-rps") {
		p.Connection.Accounts.PlatformRPS = f.platformRPS
	}
	return nil
}

func newPipelinesCmd(a *App) *cobra.Command {
	var store string
	cmd := &cobra.Command{
		Use:   "pipelines",
		Short: "Named pipelines on schedules: create, list, show, edit, pause, resume, run, delete",
		Long: `A pipeline is a named replication of one Stripe account into one destination,
kept in the control store (--store, env STRIPELINE_STORE; default sqlite://stripeline.db,
the default replica's own file; postgres://… for a store several servers share).
Its runs are jobs that "stripeline serve" works; "pipelines run --wait" works one
itself when no server does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&store, "store", "", "control store URL (env STRIPELINE_STORE; default "+defaultStore+")")
	cmd.AddCommand(
		newPipelinesCreateCmd(a, &store),
		newPipelinesListCmd(a, &store),
		newPipelinesShowCmd(a, &store),
		newPipelinesEditCmd(a, &store),
		newPipelinesPauseCmd(a, &store, true),
		newPipelinesPauseCmd(a, &store, false),
		newPipelinesRunCmd(a, &store),
		newPipelinesDeleteCmd(a, &store),
		newPipelinesAccountsCmd(a, &store),
	)
	return cmd
}

func newPipelinesCreateCmd(a *App, store *string) *cobra.Command {
	var f pipelineFlagSet
	cmd := &cobra.Command{
		Use:   "create NAME --dest URL (--api-key-env VAR | --api-key-stdin)",
		Short: "Create a pipeline",
		Example: `  stripeline pipelines create acme --dest sqlite://acme.db --api-key-env STRIPE_API_KEY_ACME --schedule "every 1h"
  printenv STRIPE_API_KEY | stripeline pipelines create acme_pg --api-key-stdin \
      --dest 'postgres://localhost/stripe?schema=acme' --streams customers,invoices --schedule "cron 0 */6 * * *"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := pipeline.Pipeline{Name: args[0], Schedule: pipeline.Manual}
			if err := f.apply(a, cmd, &p); err != nil {
				return err
			}
			if p.Connection.KeyRef == "" {
				return usagef("--api-key-env or --api-key-stdin: the pipeline needs a Stripe key: a variable to read it from at each run (--api-key-env STRIPE_API_KEY_ACME), or the key on stdin to store encrypted")
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			created, err := svc.Create(cmd.Context(), p)
			if err != nil {
				return a.pipelineErr(err)
			}
			return a.printPipeline(created)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newPipelinesEditCmd(a *App, store *string) *cobra.Command {
	var f pipelineFlagSet
	cmd := &cobra.Command{
		Use:   "edit NAME [flags]",
		Short: "Change a pipeline's settings (the flags given; the name never changes)",
		Long: `edit changes the settings whose flags are given and keeps the others. Editing a
pipeline that the service paused after an auth or permission failure lifts that pause.`,
		Example: `  stripeline pipelines edit acme --schedule "every 30m" --streams customers,invoices`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			p, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := f.apply(a, cmd, p); err != nil {
				return err
			}
			edited, err := svc.Update(cmd.Context(), *p)
			if err != nil {
				return a.pipelineErr(err)
			}
			return a.printPipeline(edited)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newPipelinesListCmd(a *App, store *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the pipelines with their state, schedule, last refresh and next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			ps, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			if a.Format == "json" {
				if ps == nil {
					ps = []*pipeline.Pipeline{}
				}
				return a.printJSON(ps)
			}
			tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tSCHEDULE\tTABLES\tCREATED\tUPDATED\tLAST REFRESH\tNEXT RUN\tDEST")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Name, stateCell(p.Status), p.Schedule, p.Status.Tables,
					stamp(p.Created), stamp(p.Updated), stamp(p.Status.LastRefresh), stamp(p.Status.NextRun), p.RedactedDest())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ps) == 0 {
				fmt.Fprintln(a.Stderr, "no pipelines yet: stripeline pipelines create NAME --dest URL --api-key-env VAR")
			}
			return nil
		},
	}
}

// stateCell is a pipeline's state, with the kind of its failure.
func stateCell(s pipeline.Status) string {
	if s.ErrorKind != "" && (s.State == pipeline.StateFailing || s.State == pipeline.StatePaused) {
		return fmt.Sprintf("%s (%s)", s.State, s.ErrorKind)
	}
	return string(s.State)
}

// stamp prints a time in UTC to the minute ("" for none).
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func newPipelinesShowCmd(a *App, store *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a pipeline's settings and status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			p, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printPipeline(p)
		},
	}
}

// printPipeline prints one pipeline: JSON, or one setting a line.
func (a *App) printPipeline(p *pipeline.Pipeline) error {
	if a.Format == "json" {
		return a.printJSON(p)
	}
	key := p.Connection.KeyRef
	if key == pipeline.KeyRefStored {
		key = "stored " + p.Connection.KeyHint
	}
	streams := "all (default catalog)"
	if len(p.Streams) > 0 {
		streams = strings.Join(p.Streams, ",")
	}
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	line("name", p.Name)
	line("display name", p.DisplayName)
	line("description", p.Description)
	line("state", stateCell(p.Status))
	line("paused", p.Status.PausedReason)
	line("error", p.Status.Error)
	line("schedule", p.Schedule.String())
	line("next run", stamp(p.Status.NextRun))
	line("last refresh", stamp(p.Status.LastRefresh))
	line("last success", stamp(p.Status.LastSuccess))
	line("dest", p.RedactedDest())
	line("streams", streams)
	for s, cols := range p.Fields {
		line("fields "+s, strings.Join(cols, ","))
	}
	line("api key", key)
	line("account", p.Connection.Account)
	line("accounts", p.Connection.Accounts.Select.String())
	if p.Connection.Accounts.PlatformRPS > 0 {
		line("platform rps", fmt.Sprint(p.Connection.Accounts.PlatformRPS))
	}
	line("api base", p.Connection.APIBase)
	if !p.StartDate.IsZero() {
		line("start date", p.StartDate.Format("2006-01-02"))
	}
	if p.LookbackDays > 0 {
		line("lookback days", fmt.Sprint(p.LookbackDays))
	}
	if p.WindowDays > 0 {
		line("window days", fmt.Sprint(p.WindowDays))
	}
	if p.MaxRPS > 0 {
		line("max rps", fmt.Sprint(p.MaxRPS))
	}
	line("created", stamp(p.Created))
	line("updated", stamp(p.Updated))
	return tw.Flush()
}

func newPipelinesPauseCmd(a *App, store *string, pause bool) *cobra.Command {
	use, short := "pause NAME", "Pause a pipeline: its schedule stops and runs are refused (a run going on finishes)"
	if !pause {
		use, short = "resume NAME", "Resume a paused pipeline"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			op := svc.Resume
			if pause {
				op = svc.Pause
			}
			p, err := op(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printPipeline(p)
		},
	}
}

// applyConfigPipelines applies the config file's pipelines to the store
// and logs where the store had drifted from the file.
func (a *App) applyConfigPipelines(ctx context.Context, svc *pipeline.Service) error {
	if a.cfg == nil || len(a.cfg.Pipelines) == 0 {
		return nil
	}
	drift, err := svc.ApplyConfig(ctx, a.cfg)
	for _, d := range drift {
		a.Logger().Warn(d)
	}
	if err != nil {
		return usage(fmt.Errorf("config %s: %w", a.cfgPath, err))
	}
	a.Logger().Info("applied the config file's pipelines", "pipelines", len(a.cfg.Pipelines), "drift", len(drift))
	return nil
}
