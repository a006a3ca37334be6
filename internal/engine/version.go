package engine

import (
	"sort"
	"strings"
	"time"
)

// Row versions (DESIGN §9). Every row the engine writes carries the version
// of the state it holds, so a write that arrives late never replaces a newer
// one (dest.Batch.OnlyNewer):
//
//   - a row from an event is versioned created × 1e6 + rank × 1e5, the rank
//     ordering the types of one second: created (1) < any update (2) <
//     deleted (3);
//   - two events of the same rank in one second (two updates) cannot be
//     told apart by their stamps: the second one to arrive finds its version
//     stored already, and the object is fetched again instead (a refetch
//     holds the newest state), written as the stored version + 1, so every
//     further tie in that second is refetched too;
//   - a row read from a list (backfill, refresh, a child list) is versioned
//     C × 1e6 − 1, C the events cursor's second when it was read (Stripe's
//     clock, not ours, which may be skewed): below every event from the
//     cursor on, which the sweep applies after the read, in order, and above
//     every event before it, which the read holds already. Without events
//     (no event streams selected) our clock's second stands in.
const (
	versionSecond = 1_000_000
	versionRank   = 100_000
)

// EventVersion is the version of a row taken from an event.
func EventVersion(created int64, typ string) int64 {
	return created*versionSecond + eventRank(typ)*versionRank
}

// ReadVersion is the version of a row read from a list while the events
// cursor stood at t.
func ReadVersion(t time.Time) int64 { return t.Unix()*versionSecond - 1 }

// readVersion is the version of rows read from a list now.
func (r *runner) readVersion() int64 {
	if s := r.readSec.Load(); s > 0 {
		return s*versionSecond - 1
	}
	return ReadVersion(r.now())
}

// cursorAt records where the events cursor stands, for readVersion.
func (r *runner) cursorAt(created int64) {
	if created > r.readSec.Load() {
		r.readSec.Store(created)
	}
}

func eventRank(typ string) int64 {
	switch {
	case strings.HasSuffix(typ, ".created"):
		return 1
	case strings.HasSuffix(typ, ".deleted"):
		return 3
	}
	return 2
}

// sameSlot reports whether a stored version belongs to the same second and
// rank as v and is not older: the event cannot be ordered against what the
// row holds by stamps alone.
func sameSlot(stored, v int64) bool {
	return stored >= v && stored/versionRank == v/versionRank
}

// stampRead gives the rows a unit read from a list their version v.
func stampRead(u *unit, v int64) {
	for _, rows := range u.rows {
		for i := range rows {
			if rows[i].Version == 0 {
				rows[i].Version = v
			}
		}
	}
}

func sortStrings(s []string) { sort.Strings(s) }
