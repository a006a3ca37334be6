package pipeline

import (
	"errors"
	"log/slog"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/ops"
	"github.com/stripeline/stripeline/internal/twoway"
)

// validateTwoWay checks the pipeline's two_way option (Pipeline.TwoWay)
// against the spec, naming the field as the config file does.
func (p *Pipeline) validateTwoWay() error {
	if !p.TwoWay.Enabled() {
		return nil
	}
	if p.Fleet() {
		return fieldErr("two_way", "", "works on one account at a time: a pipeline of several accounts cannot be two-way")
	}
	if err := p.TwoWay.Validate(); err != nil {
		var se *twoway.SettingError
		if errors.As(err, &se) {
			return &FieldError{Field: se.Key, Err: se.Err}
		}
		return &FieldError{Field: "two_way", Err: err}
	}
	return nil
}

// twoWayFromConfig is a config file pipeline's two_way option.
func twoWayFromConfig(c *config.TwoWay) *twoway.Config {
	if c == nil {
		return nil
	}
	return &twoway.Config{Streams: c.Streams, Conflicts: twoway.Policy(c.Conflicts)}
}

// withTwoWay makes a run of a two-way pipeline push the database's edits
// to Stripe before its pull.
func withTwoWay(p *Pipeline, opts *engine.Options, client ops.Client, d dest.Destination, logger *slog.Logger) error {
	if !p.TwoWay.Enabled() {
		return nil
	}
	push, err := twoway.New(p.TwoWay, client, d, logger)
	if err != nil {
		return &FieldError{Field: "two_way", Err: err}
	}
	opts.TwoWay, opts.Push = p.TwoWay.EngineFields(), push
	return nil
}
