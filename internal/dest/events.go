package dest

import (
	"context"
	"time"
)

// EventsTable records, per pipeline, the Stripe events whose rows a
// destination holds: written in the same transaction as those rows
// (Batch.Events), so a delivery acknowledged once is never applied twice and
// the events sweep knows what the webhook endpoint applied already.
const EventsTable = "_stripeline_events"

// Event sources, as recorded in EventsTable.
const (
	SourceWebhook = "webhook"
	SourceSweep   = "sweep"
)

// AppliedEvent is one event a batch applies.
type AppliedEvent struct {
	Pipeline string
	ID       string
	Type     string
	// Created is the event's created stamp (unix seconds).
	Created int64
	// Source is SourceWebhook or SourceSweep.
	Source string
	// Received is when its delivery arrived (zero for the sweep).
	Received time.Time
}

// EventStat summarises the events of one source recorded for a pipeline.
type EventStat struct {
	Source string
	Count  int64
	// LastCreated is the newest event's created stamp (unix seconds).
	LastCreated int64
	// LastApplied is when the newest record was written.
	LastApplied time.Time
	// LagMillis is the mean time from an event's creation to its rows
	// being durable, over the records of the last hour (webhook only).
	LagMillis float64
}

// EventLog is implemented by destinations that record applied events with
// their rows (the SQL destinations). A destination without it ignores
// Batch.Events; the webhook endpoint refuses to serve a pipeline that writes
// to one, as it could not tell a duplicate delivery from a new one.
// Every method is safe for concurrent use and sees every Write that
// returned before it was called.
type EventLog interface {
	// AppliedEvents returns which of ids are recorded for pipeline, with
	// their source.
	AppliedEvents(ctx context.Context, pipeline string, ids []string) (map[string]string, error)
	// Versions returns the stored _stripeline_version of the rows of table
	// with those ids (ids without a row are absent). A table that does not
	// exist yet holds no rows.
	Versions(ctx context.Context, table string, ids []string) (map[string]int64, error)
	// EventStats summarises a pipeline's records by source.
	EventStats(ctx context.Context, pipeline string) ([]EventStat, error)
	// ForgetEvents deletes a pipeline's records of events created before
	// the given unix second (Stripe retries a delivery for three days and
	// keeps events for thirty) and returns how many it deleted.
	ForgetEvents(ctx context.Context, pipeline string, before int64) (int64, error)
}
