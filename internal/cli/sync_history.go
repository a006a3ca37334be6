package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
)

// syncHistoryFlags are sync's change-history flags.
type syncHistoryFlags struct {
	mode     string
	keepRuns int
	keepDays int
}

func (h *syncHistoryFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&h.mode, "history", "", "change history the run keeps: changes (default: previous values, for rollback and --as-of), full (every version, never pruned) or off")
	fl.IntVar(&h.keepRuns, "history-keep-runs", 0, fmt.Sprintf("keep the change history of the pipeline's last N runs (default %d; negative: no limit)", history.DefaultKeepRuns))
	fl.IntVar(&h.keepDays, "history-keep-days", 0, fmt.Sprintf("keep the change history of the last N days (default %d; negative: no limit)", history.DefaultKeepDays))
}

// policy is the engine's history option from the flags.
func (h *syncHistoryFlags) policy() (history.Policy, error) {
	if _, err := history.ParseMode(h.mode); err != nil {
		return history.Policy{}, usagef("--history %q is not a history mode: use changes, full or off", h.mode)
	}
	return history.Policy{Mode: dest.HistoryMode(h.mode), KeepRuns: h.keepRuns, KeepDays: h.keepDays}, nil
}
