// Package cli is stripeline's command line: one file per command, all of
// them thin faces over the engine, the client and the destinations.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/config"
)

// Version is set at build time with -ldflags "-X …/cli.Version=v1.2.3".
var Version = "dev"

// Exit codes (DESIGN §2).
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// App carries the global flags, the I/O streams, the environment and the
// loaded config to every command of one invocation.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	env    Env

	APIBase    string
	Account    string
	Format     string
	LogLevel   string
	ConfigPath string

	cfg     *config.Config
	cfgPath string         // as given, for messages; "" when no file was read
	cmd     *cobra.Command // the command running, once its flags are parsed
	logger  *slog.Logger
}

// UsageError is an error in what the user typed: exit 2.
type UsageError struct{ Err error }

// Error is the underlying error's.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error, so a setting's error is still
// printed in the CLI's words.
func (e *UsageError) Unwrap() error { return e.Err }

// usage makes err a usage error.
func usage(err error) error { return &UsageError{Err: err} }

// usagef returns a *UsageError.
func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Run runs one invocation of the CLI in env and returns its exit code.
func Run(ctx context.Context, env Env) int {
	stdin, stdout, stderr := env.Stdin, env.Stdout, env.Stderr
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// Logs, progress and retry notices share stderr from several goroutines.
	app := &App{Stdin: stdin, Stdout: stdout, Stderr: &stderrWriter{w: stderr}, env: env}
	root := app.rootCommand()
	root.SetArgs(env.Args)
	if env.Args == nil {
		root.SetArgs([]string{})
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "stripeline: "+app.inCLIWords(err))
	var ue *UsageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	var ce *config.ConfigError
	if errors.As(err, &ce) {
		return ExitUsage
	}
	return ExitFail
}

// isCobraUsage recognises cobra's own argument and flag errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "requires at most", "required flag", "bad flag syntax"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "stripeline",
		Short: "Replicate a Stripe account into SQLite, PostgreSQL, MySQL or files, and operate on it",
		Long: `stripeline gets a company's Stripe data out, keeps it fresh, and puts data back.

The API key comes from STRIPE_API_KEY or the config file (api_key), never from a flag.
Point --api-base (or STRIPE_API_BASE) at an emulator to work without Stripe.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	f := root.PersistentFlags()
	f.StringVar(&a.APIBase, "api-base", "", "Stripe API base URL (env STRIPE_API_BASE), e.g. http://127.0.0.1:12111 for the emulator")
	f.StringVar(&a.Account, "account", "", "act on a connected account (acct_…), sent as the Stripe-Account header")
	f.StringVar(&a.Format, "format", "table", "output format: table|json (csv where a command says so)")
	f.StringVar(&a.LogLevel, "log-level", "info", "log level: debug|info|warn|error")
	f.StringVar(&a.ConfigPath, "config", "", "config file (env STRIPELINE_CONFIG; default ./stripeline.yaml if present)")
	root.AddCommand(a.commands()...)
	return root
}

// commands are stripeline's commands, each built for this invocation.
func (a *App) commands() []*cobra.Command {
	return []*cobra.Command{
		newDemoCmd(a),
		newEmulatorCmd(a),
		newCheckCmd(a),
		newStreamsCmd(a),
		newSyncCmd(a),
		newRunsCmd(a),
		newPipelinesCmd(a),
		newGetCmd(a),
		newSearchCmd(a),
		newCreateCmd(a),
		newUpdateCmd(a),
		newDeleteCmd(a),
		newLoadCmd(a),
		newQueryCmd(a),
		newRollbackCmd(a),
		newExportCmd(a),
		newBackupCmd(a),
		newDiffCmd(a),
		newRestoreCmd(a),
		newBenchCmd(a),
		newServeCmd(a),
		newListenCmd(a),
		newWebhooksCmd(a),
		newVersionCmd(a),
	}
}

// setup validates the global flags and loads the config file.
func (a *App) setup(cmd *cobra.Command) error {
	a.cmd = cmd
	switch a.Format {
	case "table", "json", "csv":
	default:
		return usagef("--format %q is not supported: use table, json or csv", a.Format)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.LogLevel)); err != nil {
		return usagef("--log-level %q is not supported: use debug, info, warn or error", a.LogLevel)
	}
	a.logger = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level}))
	path, mustExist := a.ConfigPath, true
	if path == "" {
		path = a.getenv("STRIPELINE_CONFIG")
	}
	if path == "" {
		path, mustExist = "stripeline.yaml", false
	}
	cfg, read, err := a.loadConfig(path, mustExist)
	if err != nil {
		return usage(err) // the file is what the user wrote
	}
	a.cfg = cfg
	if read {
		a.cfgPath = path
	}
	if a.APIBase == "" {
		a.APIBase = a.getenv("STRIPE_API_BASE")
	}
	if a.APIBase == "" {
		a.APIBase = cfg.APIBase
	}
	if a.Account == "" {
		a.Account = cfg.Account
	}
	if a.Account != "" && !strings.HasPrefix(a.Account, "acct_") {
		return usagef("--account %q is not a connected account id: expected acct_…", a.Account)
	}
	return nil
}

// loadConfig reads the config file at path (from the working directory)
// into the defaults, its ${ENV} references read from the invocation's
// environment. A missing file is the defaults unless mustExist; read says
// whether there was a file.
func (a *App) loadConfig(path string, mustExist bool) (cfg *config.Config, read bool, err error) {
	cfg = config.Default()
	data, err := os.ReadFile(a.path(path))
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return cfg, false, nil
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err // the path as given, not as resolved
	}
	if err != nil {
		return nil, false, fmt.Errorf("read config %s: %w", path, err)
	}
	if err := config.ParseEnv(data, cfg, a.getenv); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, true, nil
}

// Config returns the loaded configuration.
func (a *App) Config() *config.Config { return a.cfg }

// Logger returns the logger writing to stderr.
func (a *App) Logger() *slog.Logger { return a.logger }

// APIKey returns the key from STRIPE_API_KEY or the config file.
func (a *App) APIKey() string {
	if k := a.getenv("STRIPE_API_KEY"); k != "" {
		return k
	}
	return a.cfg.APIKey
}

// printJSON writes v as indented JSON on stdout.
func (a *App) printJSON(v any) error {
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
