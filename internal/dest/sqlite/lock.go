package sqlite

import (
	"context"
	"fmt"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/filelock"
)

var _ dest.Locker = (*Destination)(nil)

// LockPath is the lock file of a pipeline's runs on the database at path.
func LockPath(path, pipeline string) string {
	return path + ".lock-" + filelock.Name(pipeline)
}

// Lock takes the run lock of req.Pipeline: a flock on the file beside the
// database (LockPath), released when the process ends. What the
// destination knows of the tables is read again afterwards, since a run of
// another pipeline may have changed them.
func (d *Destination) Lock(ctx context.Context, req dest.LockRequest) (dest.Lock, error) {
	if d.Closed() {
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, dest.ErrClosed)
	}
	l, err := filelock.Lock(ctx, LockPath(d.path, req.Pipeline), req)
	if err != nil {
		return nil, err
	}
	d.Forget()
	return l, nil
}
