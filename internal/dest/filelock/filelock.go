// Package filelock is the run lock of the destinations that live in files
// (SQLite, and the csv/jsonl/parquet directories): an OS lock (flock) on a
// lock file beside the replica, with the holder's details written inside as
// JSON. The kernel releases it when the holding process dies, SIGKILL
// included, so a killed run never blocks the next one.
package filelock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"

	"github.com/stripeline/stripeline/internal/dest"
)

// errHeld is what tryFlock returns when another holder has the lock.
var errHeld = errors.New("lock held")

var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Name is how a pipeline appears in a lock file's name: the name itself
// when it is a plain one ([A-Za-z0-9_-], at most 64), else a hash of it.
func Name(pipeline string) string {
	if plainName.MatchString(pipeline) {
		return pipeline
	}
	sum := sha256.Sum256([]byte(pipeline))
	return "h" + hex.EncodeToString(sum[:12])
}

// Lock takes the lock on the file at path (created if missing), following
// req's wait, and writes req.Holder into it. A held lock is a
// *dest.LockedError naming the holder recorded in the file.
func Lock(ctx context.Context, path string, req dest.LockRequest) (dest.Lock, error) {
	holder, err := json.Marshal(req.Holder)
	if err != nil {
		return nil, fmt.Errorf("encode lock holder: %w", err)
	}
	return dest.AcquireLock(ctx, req, func(context.Context) (dest.Lock, *dest.Holder, error) {
		return try(path, holder)
	})
}

// ReadHolder returns the holder recorded in the lock file at path, if any
// (the file outlives a killed holder, so the holder may be gone).
func ReadHolder(path string) (*dest.Holder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h dest.Holder
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	return &h, nil
}

func try(path string, holder []byte) (dest.Lock, *dest.Holder, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open lock file %s: %w", path, err)
		}
		if err := tryFlock(f); err != nil {
			var held *dest.Holder
			if errors.Is(err, errHeld) {
				held = readHolder(f)
				err = nil
			} else {
				err = fmt.Errorf("lock %s: %w", path, err)
			}
			f.Close()
			return nil, held, err
		}
		// The previous holder removes the file as it unlocks: a lock taken
		// on the removed file excludes nobody, so take the one at path.
		if fi, err := f.Stat(); err == nil {
			if pi, err := os.Stat(path); err != nil || !os.SameFile(fi, pi) {
				f.Close()
				continue
			}
		}
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt(holder, 0)
		}
		if err != nil {
			os.Remove(path)
			f.Close()
			return nil, nil, fmt.Errorf("write lock file %s: %w", path, err)
		}
		return &lock{f: f, path: path}, nil, nil
	}
}

// readHolder reads the holder's JSON; nil while the holder has not written
// it yet.
func readHolder(f *os.File) *dest.Holder {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil || len(b) == 0 {
		return nil
	}
	var h dest.Holder
	if json.Unmarshal(b, &h) != nil {
		return nil
	}
	return &h
}

type lock struct {
	once sync.Once
	f    *os.File
	path string
	err  error
}

// Unlock removes the lock file while still holding it, then closes it,
// which releases the lock.
func (l *lock) Unlock() error {
	l.once.Do(func() {
		rmErr := os.Remove(l.path)
		if errors.Is(rmErr, os.ErrNotExist) {
			rmErr = nil
		}
		l.err = errors.Join(rmErr, l.f.Close())
		if l.err != nil {
			l.err = fmt.Errorf("unlock %s: %w", l.path, l.err)
		}
	})
	return l.err
}

// Lost is nil: a file lock is held until the process closes it or dies.
func (l *lock) Lost() <-chan struct{} { return nil }
