package mysql

// BulkFallbacks reports how many batches fell back from LOAD DATA to
// plain upserts.
func BulkFallbacks() int64 { return bulkFallbacks.Load() }
