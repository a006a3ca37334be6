package engine

import "fmt"

// SettingError is an Options field Validate refused. Setting names it as
// the config file does (streams, lookback_days, window_days,
// reconcile_every, concurrency); a face maps it to its own words (a flag).
type SettingError struct {
	Field string
	Err   error
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *SettingError) Unwrap() error { return e.Err }

// Setting returns the config key of the refused field.
func (e *SettingError) Setting() string { return e.Field }

func settingErr(field, format string, args ...any) error {
	return &SettingError{Field: field, Err: fmt.Errorf(format, args...)}
}
