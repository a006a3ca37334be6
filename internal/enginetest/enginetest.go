// Package enginetest holds test helpers around the emulator and
// replicacheck: the streams the emulator seeds, and a replica comparison
// that fails the test.
package enginetest

import (
	"context"
	"sort"
	"testing"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// SeededStreams are the streams the emulator fills in the main account.
func SeededStreams(t testing.TB, emu *emulator.Emulator, account string) []string {
	t.Helper()
	var out []string
	for name, n := range emu.Counts(account) {
		// The replica keeps the event log's history; the account forgets
		// events after 30 days, so the two are not meant to be equal.
		if n > 0 && name != "events" {
			if _, ok := catalog.Lookup(name); ok {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("emulator seeded only %v", out)
	}
	return out
}

// AssertReplicaEqualsAccount compares every current object of every seeded
// stream with its row, top-level field by field, and checks deletions.
func AssertReplicaEqualsAccount(t testing.TB, q dest.Querier, emu *emulator.Emulator, account string, streams []string) {
	t.Helper()
	if err := replicacheck.Compare(context.Background(), q, emu, account, streams); err != nil {
		t.Error(err)
	}
}
