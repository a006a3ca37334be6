package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/ops"
	"github.com/stripeline/stripeline/internal/twoway"
)

// syncTwoWayFlags are sync's two-way flags.
type syncTwoWayFlags struct {
	streams   []string // STREAM=field,field
	conflicts string
}

func (f *syncTwoWayFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.streams, "two-way", nil, "push the database's edits of these fields to Stripe before the pull: STREAM=field,field (repeat per stream), e.g. --two-way customers=email,name,metadata")
	fl.StringVar(&f.conflicts, "conflicts", "", "a field changed on both sides since the last run: "+policyWords()+" (default stripe-wins)")
}

func policyWords() string {
	s := make([]string, len(twoway.Policies))
	for i, p := range twoway.Policies {
		s[i] = string(p)
	}
	return strings.Join(s, "|")
}

// fromConfig turns the config file's two_way into the package's option.
func fromConfig(c *config.TwoWay) *twoway.Config {
	if c == nil {
		return nil
	}
	return &twoway.Config{Streams: c.Streams, Conflicts: twoway.Policy(c.Conflicts)}
}

// twoWayConfig is the run's two-way option: the config file's two_way,
// then the flags (a --two-way stream replaces the file's fields of it).
func (a *App) twoWayConfig(f syncTwoWayFlags) (*twoway.Config, error) {
	cfg := &twoway.Config{Streams: map[string][]string{}}
	if c := fromConfig(a.cfg.TwoWay); c != nil {
		for k, v := range c.Streams {
			cfg.Streams[k] = v
		}
		cfg.Conflicts = c.Conflicts
	}
	for _, s := range f.streams {
		name, list, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.TrimSpace(list) == "" {
			return nil, usagef("--two-way %q: use STREAM=field,field, e.g. --two-way customers=email,name,metadata", s)
		}
		var fields []string
		for _, fld := range strings.Split(list, ",") {
			if fld = strings.TrimSpace(fld); fld != "" {
				fields = append(fields, fld)
			}
		}
		cfg.Streams[name] = fields
	}
	if f.conflicts != "" {
		cfg.Conflicts = twoway.Policy(f.conflicts)
	}
	if !cfg.Enabled() {
		if cfg.Conflicts != "" {
			return nil, usagef("--conflicts needs two-way streams: name them with --two-way STREAM=field,field")
		}
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, usage(err)
	}
	return cfg, nil
}

// setupTwoWay makes the run push first, when two-way streams are set.
func (a *App) setupTwoWay(cfg *twoway.Config, opts *engine.Options, client ops.Client, dst dest.Destination) error {
	if !cfg.Enabled() {
		return nil
	}
	p, err := twoway.New(cfg, client, dst, a.Logger())
	if err != nil {
		return usage(err)
	}
	opts.Push = p
	return nil
}

// writeTwoWay prints a push's report under the sync table.
func writeTwoWay(w io.Writer, report any) {
	rep, ok := report.(*twoway.Report)
	if !ok || rep == nil {
		return
	}
	writeTwoWayReport(w, rep)
}

func writeTwoWayReport(w io.Writer, rep *twoway.Report) {
	fmt.Fprintf(w, "two-way (%s): %d updated, %d created, %d deleted in Stripe, %d requests; %d conflicts, %d refused",
		rep.Policy, rep.Updated, rep.Created, rep.Deleted, rep.Requests, len(rep.Conflicts), len(rep.Rejected))
	if rep.Held > 0 {
		fmt.Fprintf(w, ", %d held (refused before, unchanged)", rep.Held)
	}
	fmt.Fprintln(w)
	for _, c := range rep.Conflicts {
		fmt.Fprintf(w, "conflict: %s %s %s: database %s, Stripe %s (was %s): %s wins\n", c.Stream, c.ID, c.Field, c.Database, c.Stripe, c.Remembered, c.Winner)
	}
	rej := append([]twoway.Rejection(nil), rep.Rejected...)
	sort.Slice(rej, func(i, j int) bool { return rej[i].Stream+rej[i].ID < rej[j].Stream+rej[j].ID })
	for _, r := range rej {
		param := ""
		if r.Param != "" {
			param = " (" + r.Param + ")"
		}
		fmt.Fprintf(w, "refused: %s %s %s%s: %s\n", r.Op, r.Stream, r.ID, param, r.Message)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}
