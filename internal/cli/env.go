package cli

import (
	"io"
	"net/url"
	"path/filepath"
	"time"
)

// Env is the world one invocation of the CLI runs in: its arguments, its
// streams, its environment variables, its working directory, its clock and
// which of its streams are terminals. Run reads nothing of the process
// besides it, so invocations can run side by side in one process (the
// tests run in parallel); ProcessEnv is the process's own.
type Env struct {
	// Args are the arguments, without the program name.
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv returns an environment variable ("" when unset); nil is an
	// empty environment.
	Getenv func(key string) string
	// Dir is the working directory that relative paths (the config file, a
	// sqlite:// or csv:// replica, --out, load's FILE) are taken from; ""
	// leaves them to the process's.
	Dir string
	// Now is the clock of elapsed times and progress; nil is time.Now.
	Now func() time.Time
	// IsTerminal reports whether one of the streams above is a terminal
	// (progress bars, confirmations, binary output); nil: none is.
	IsTerminal func(stream any) bool
	// SetMemoryLimit sets the Go heap's soft limit for a sync, as
	// runtime/debug.SetMemoryLimit does; nil leaves the limit alone. It is
	// the process's, so only ProcessEnv sets it.
	SetMemoryLimit func(limit int64) int64

	// clientOption, set by tests only, adjusts every Stripe client last
	// (e.g. a millisecond backoff so retries take no real time).
	clientOption ClientOption
}

// getenv reads an environment variable of the invocation.
func (a *App) getenv(key string) string {
	if a.env.Getenv == nil {
		return ""
	}
	return a.env.Getenv(key)
}

// now reads the invocation's clock.
func (a *App) now() time.Time {
	if a.env.Now == nil {
		return time.Now()
	}
	return a.env.Now()
}

// isTerminal reports whether one of the invocation's streams is a terminal.
func (a *App) isTerminal(stream any) bool {
	if s, ok := stream.(*stderrWriter); ok {
		stream = s.w
	}
	return a.env.IsTerminal != nil && a.env.IsTerminal(stream)
}

// path takes a relative path from the invocation's working directory.
func (a *App) path(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || a.env.Dir == "" {
		return p
	}
	return filepath.Join(a.env.Dir, p)
}

// localURL takes the relative path of a sqlite:// or file destination URL
// from the invocation's working directory; other URLs are returned as
// they are.
func (a *App) localURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	p, ok := localPath(u)
	if !ok || p == "" || p == ":memory:" || filepath.IsAbs(p) || a.env.Dir == "" {
		return rawURL
	}
	abs := url.URL{Scheme: u.Scheme, Path: filepath.Join(a.env.Dir, p), RawQuery: u.RawQuery}
	return abs.String()
}

// localPath is the file or directory a sqlite:// or file destination URL
// names, as the destinations read it.
func localPath(u *url.URL) (string, bool) {
	switch u.Scheme {
	case "sqlite", "csv", "jsonl", "parquet":
	default:
		return "", false
	}
	if u.Opaque != "" {
		return u.Opaque, true
	}
	return u.Host + u.Path, true
}
