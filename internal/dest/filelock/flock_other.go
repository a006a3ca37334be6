//go:build !unix

package filelock

import (
	"errors"
	"os"
)

// tryFlock is not available here: the run lock of file destinations needs
// flock.
func tryFlock(*os.File) error { return errors.ErrUnsupported }
