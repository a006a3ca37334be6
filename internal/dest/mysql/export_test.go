package mysql

import "time"

// BulkFallbacks reports how many batches fell back from LOAD DATA to
// plain upserts.
func BulkFallbacks() int64 { return bulkFallbacks.Load() }

// SetLockWatch sets how often held locks are checked, for one test.
func SetLockWatch(t interface{ Cleanup(func()) }, d time.Duration) {
	old := lockWatch
	lockWatch = d
	t.Cleanup(func() { lockWatch = old })
}
