package ops

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Row statuses in a load's results and report.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusDeleted   = "deleted"
	StatusUnchanged = "unchanged" // replayed from an earlier run, or already deleted
	StatusFailed    = "failed"    // Stripe (or the network) refused the request
	StatusInvalid   = "invalid"   // rejected before sending
	StatusPlanned   = "planned"   // dry run: validated, not sent
	StatusSkipped   = "skipped"   // not attempted: the load stopped first
)

// Result is the outcome of one row.
type Result struct {
	Row    int    // 1-based data row (CSV header not counted)
	ID     string // the object's id when known
	Status string
	Error  string
}

// Summary counts the results of a load by status.
type Summary struct {
	Created, Updated, Deleted, Unchanged, Failed, Invalid, Planned, Skipped int
}

// Add counts one result.
func (s *Summary) Add(status string) {
	switch status {
	case StatusCreated:
		s.Created++
	case StatusUpdated:
		s.Updated++
	case StatusDeleted:
		s.Deleted++
	case StatusUnchanged:
		s.Unchanged++
	case StatusFailed:
		s.Failed++
	case StatusInvalid:
		s.Invalid++
	case StatusPlanned:
		s.Planned++
	case StatusSkipped:
		s.Skipped++
	}
}

// OK is true when no row failed, was invalid or was skipped.
func (s Summary) OK() bool { return s.Failed == 0 && s.Invalid == 0 && s.Skipped == 0 }

func (s Summary) String() string {
	out := fmt.Sprintf("created %d, updated %d, deleted %d, unchanged %d, failed %d, invalid %d", s.Created, s.Updated, s.Deleted, s.Unchanged, s.Failed, s.Invalid)
	if s.Planned > 0 {
		out += fmt.Sprintf(", planned %d", s.Planned)
	}
	if s.Skipped > 0 {
		out += fmt.Sprintf(", skipped %d", s.Skipped)
	}
	return out
}

// WriteReport writes results as CSV (row,id,status,error) to path
// atomically: a temp file in the same directory, fsync, rename.
func WriteReport(path string, results []Result) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := csv.NewWriter(f)
	if err := w.Write([]string{"row", "id", "status", "error"}); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, r := range results {
		if err := w.Write([]string{strconv.Itoa(r.Row), r.ID, r.Status, r.Error}); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
