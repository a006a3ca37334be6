package dest

import "errors"

// Sentinel errors every destination returns (wrapped, with what it was
// doing), checked with errors.Is.
var (
	// ErrNoTable says the table asked for does not exist in the replica
	// (nothing was ever migrated or written under that name).
	ErrNoTable = errors.New("no such table")
	// ErrClosed says the destination was used after Close.
	ErrClosed = errors.New("the destination is closed")
)

// SettingError is a destination setting that cannot be used as given: a
// URL that is not one, a scheme no destination registered, a URL without
// the path or database it needs. Setting names the setting as the config
// file does (dest); a face maps it to its own words (the CLI's --dest).
type SettingError struct {
	Field string
	Err   error
}

// Error reads "dest: " and the reason with its fix.
func (e *SettingError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *SettingError) Unwrap() error { return e.Err }

// Setting returns the config key of the setting (dest).
func (e *SettingError) Setting() string { return e.Field }

// BadURL is a *SettingError for the dest setting: the reason and its fix.
func BadURL(err error) error { return &SettingError{Field: "dest", Err: err} }
