package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/stripe"
)

// FromConfig makes the pipeline a config file declares (pipelines[i]).
// Settings it leaves out take the file's top-level ones (api_base,
// account, proxy, rates), then the defaults; the key defaults to
// env:STRIPE_API_KEY.
func FromConfig(c *config.Config, i int) (Pipeline, error) {
	d := c.Pipelines[i]
	field := fmt.Sprintf("pipelines[%d]", i)
	p := Pipeline{
		Name: d.Name, DisplayName: d.DisplayName, Description: d.Description, Dest: d.Dest, Streams: d.Streams,
		LookbackDays: d.LookbackDays, WindowDays: d.WindowDays, MaxRPS: d.MaxRPS, EndpointRPS: d.EndpointRPS,
		Connection: Connection{APIBase: d.APIBase, Account: d.Account, Proxy: c.Proxy},
		Source:     "config",
		TwoWay:     twoWayFromConfig(d.TwoWay),
		History:    historyFromConfig(d.History),
	}
	if p.Connection.APIBase == "" {
		p.Connection.APIBase = c.APIBase
	}
	if p.Connection.Account == "" {
		p.Connection.Account = c.Account
	}
	if p.MaxRPS == 0 {
		p.MaxRPS = c.MaxRPS
	}
	if p.EndpointRPS == 0 {
		p.EndpointRPS = c.EndpointRPS
	}
	switch key := d.APIKey; {
	case key == "":
		p.Connection.KeyRef = "env:STRIPE_API_KEY"
	case strings.HasPrefix(key, "env:"):
		p.Connection.KeyRef = key
	default:
		p.Connection.KeyRef, p.Connection.APIKey = KeyRefStored, stripe.Secret(key)
	}
	if len(d.Accounts) > 0 {
		sel, err := fleet.ParseSelection(d.Accounts...)
		if err != nil {
			return p, &config.ConfigError{Field: field + ".accounts", Err: err}
		}
		p.Connection.Accounts.Select = sel
	}
	p.Connection.Accounts.PlatformRPS = d.PlatformRPS
	sch, err := ParseSchedule(d.Schedule)
	if err != nil {
		return p, configErr(field, err)
	}
	p.Schedule = sch
	if d.StartDate != "" {
		t, err := time.Parse("2006-01-02", d.StartDate)
		if err != nil {
			return p, &config.ConfigError{Field: field + ".start_date", Value: d.StartDate, Err: errors.New("is not a date: use YYYY-MM-DD")}
		}
		p.StartDate = t
	}
	if err := p.Validate(); err != nil {
		return p, configErr(field, err)
	}
	return p, nil
}

// configErr names a pipeline's setting as the config file does.
func configErr(field string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &config.ConfigError{Field: field + "." + fe.Field, Value: fe.Value, Err: fe.Err}
	}
	return err
}

// ApplyConfig makes the control store hold the pipelines the config file
// declares: new ones are created, changed ones updated (the file wins; a
// stored key is kept when the file names none). It returns one line per
// drift it found: a setting the store had otherwise, a declared pipeline
// made by hand, a pipeline from the file that the file no longer declares
// (kept: delete it by hand).
func (s *Service) ApplyConfig(ctx context.Context, c *config.Config) (drift []string, err error) {
	declared := map[string]bool{}
	for i := range c.Pipelines {
		p, err := FromConfig(c, i)
		if err != nil {
			return drift, err
		}
		declared[p.Name] = true
		old, err := s.st.pipeline(ctx, p.Name)
		if errors.Is(err, ErrNotFound) {
			if _, err := s.Create(ctx, p); err != nil {
				return drift, configErr(fmt.Sprintf("pipelines[%d]", i), err)
			}
			continue
		}
		if err != nil {
			return drift, err
		}
		if p.Connection.APIKey != "" && old.sealed != "" {
			if k, err := s.keyring(); err == nil {
				if same, err := k.open(p.Name, old.sealed); err == nil && same == p.Connection.APIKey {
					p.Connection.APIKey = "" // the stored key is the file's
				}
			}
		}
		diffs := specDiff(specOf(&old.p), specOf(&p), p.Connection.APIKey != "")
		if old.p.Source != "config" {
			drift = append(drift, fmt.Sprintf("pipeline %s was made by hand; the config file declares it and now holds it", p.Name))
		}
		if len(diffs) == 0 && old.p.Source == "config" {
			continue
		}
		for _, d := range diffs {
			drift = append(drift, fmt.Sprintf("pipeline %s: %s differed from the config file; the file's applies", p.Name, d))
		}
		if _, err := s.Update(ctx, p); err != nil {
			return drift, configErr(fmt.Sprintf("pipelines[%d]", i), err)
		}
	}
	recs, err := s.st.pipelines(ctx)
	if err != nil {
		return drift, err
	}
	for _, r := range recs {
		if r.p.Source == "config" && !declared[r.p.Name] {
			drift = append(drift, fmt.Sprintf("pipeline %s came from the config file, which no longer declares it; it is kept (delete it if it should go)", r.p.Name))
		}
	}
	return drift, nil
}

// specDiff names the settings that differ between the stored and the
// declared pipeline (a declared key counts as a change only when given).
func specDiff(stored, declared spec, keyGiven bool) []string {
	var out []string
	add := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, fmt.Sprintf("%s (store %v, file %v)", name, a, b))
		}
	}
	add("display_name", stored.DisplayName, declared.DisplayName)
	add("description", stored.Description, declared.Description)
	if stored.Dest != declared.Dest {
		out = append(out, "dest")
	}
	add("api_key", stored.Connection.KeyRef, declared.Connection.KeyRef)
	if keyGiven {
		out = append(out, "api_key (a new key to store)")
	}
	add("account", stored.Connection.Account, declared.Connection.Account)
	add("accounts", stored.Connection.Accounts.Select.String(), declared.Connection.Accounts.Select.String())
	add("platform_rps", stored.Connection.Accounts.PlatformRPS, declared.Connection.Accounts.PlatformRPS)
	add("api_base", stored.Connection.APIBase, declared.Connection.APIBase)
	add("streams", strings.Join(stored.Streams, ","), strings.Join(declared.Streams, ","))
	add("schedule", stored.Schedule.String(), declared.Schedule.String())
	add("start_date", stored.StartDate.Format("2006-01-02"), declared.StartDate.Format("2006-01-02"))
	add("lookback_days", stored.LookbackDays, declared.LookbackDays)
	add("window_days", stored.WindowDays, declared.WindowDays)
	add("max_rps", stored.MaxRPS, declared.MaxRPS)
	add("endpoint_rps", stored.EndpointRPS, declared.EndpointRPS)
	return out
}
