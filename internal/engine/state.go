package engine

import (
	"encoding/json"
	"fmt"
)

// Phases of a stream's state.
const (
	phaseBackfill = "backfill"
	phaseDone     = "done"
)

// eventsKey is the state row holding the account-wide events cursor.
const eventsKey = "_events"

// clockKey is the state row holding the last run's stamp floor.
const clockKey = "_clock"

// runClock is saved under clockKey.
type runClock struct {
	Floor int64 `json:"floor"`
}

// streamState is one job's checkpoint, saved in _stripeline_state in the
// same transaction as the rows it covers.
type streamState struct {
	Phase string `json:"phase"`
	// Upper is the newest created value read so far; it becomes the created
	// cursor when the read ends.
	Upper int64 `json:"upper,omitempty"`
	// Slices are the parts of [start, Upper) not yet read, for lists with a
	// created filter. Each slice's Hi moves down as pages commit.
	Slices []span `json:"slices,omitempty"`
	// After is the last committed id of a sequential (no created filter) read.
	After string `json:"after,omitempty"`
	// Created is the created cursor of a stream without events.
	Created int64 `json:"created,omitempty"`
	// Since is when a complete re-read began: when it ends, rows of the
	// stream last written before Since were not seen and are flagged deleted.
	Since int64 `json:"since,omitempty"`
	// Reason marks a backfill that re-reads a stream in full on purpose (for
	// example after the events cursor fell out of retention).
	Reason string `json:"reason,omitempty"`
	// Reconciled is when the last complete read of the stream began; a
	// per-parent child list is re-read in full once it is older than
	// Options.ReconcileEvery.
	Reconciled int64 `json:"reconciled,omitempty"`
}

// span is a half-open created range [Lo, Hi).
type span struct {
	ID int   `json:"id"`
	Lo int64 `json:"lo"`
	Hi int64 `json:"hi"`
}

// eventsCursor says which events have been applied: every event created
// before Created, and those created at Created whose ids are in Seen.
type eventsCursor struct {
	Created int64    `json:"created"`
	Seen    []string `json:"seen,omitempty"`
}

func decodeState(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode saved state %s: %w (a full refresh starts over)", truncate(string(raw), 80), err)
	}
	return nil
}

func encodeState(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of ints and strings always encode
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
