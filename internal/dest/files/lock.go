package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/filelock"
)

var _ dest.Locker = (*Destination)(nil)

// LockFile is the run lock file of a directory.
const LockFile = ".stripeline.lock"

// Lock takes the run lock of the directory: a flock on DIR/.stripeline.lock,
// released when the process ends. Unlike the database destinations, a
// directory holds one run at a time whatever its pipeline, because the
// pipelines of a directory share its state file, run history and part
// numbering. The state file is read again once the lock is held, since the
// previous holder may have changed it after this destination was opened.
func (d *Destination) Lock(ctx context.Context, req dest.LockRequest) (dest.Lock, error) {
	if d.isClosed() {
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, errClosed)
	}
	l, err := filelock.Lock(ctx, filepath.Join(d.dir, LockFile), req)
	if err != nil {
		return nil, err
	}
	if err := d.reload(); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// reload reads the state file again.
func (d *Destination) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	st, err := readState(d.dir)
	if err != nil {
		return fmt.Errorf("%s destination %s://%s: %w", d.format, d.format, d.dir, err)
	}
	// Tables migrated before the lock keep their columns.
	for name, ti := range d.st.Tables {
		if st.Tables[name] == nil {
			st.Tables[name] = &tableInfo{}
		}
		addColumns(st.Tables[name], ti.Columns)
	}
	d.st = st
	d.versions = map[string]map[string]int64{}
	return nil
}

// readState reads DIR/_stripeline_state.json; a missing file is an empty state.
func readState(dir string) (stateFile, error) {
	st := stateFile{State: map[string]map[string]json.RawMessage{}, Tables: map[string]*tableInfo{}}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, nil
	case err != nil:
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s is not valid: %w", StateFile, err)
	}
	if st.State == nil {
		st.State = map[string]map[string]json.RawMessage{}
	}
	if st.Tables == nil {
		st.Tables = map[string]*tableInfo{}
	}
	return st, nil
}
