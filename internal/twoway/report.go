package twoway

import "encoding/json"

// Report is what a run's push did, kept in the run record under
// "two_way" and shown by `stripeline runs show RUN`.
type Report struct {
	Policy  Policy `json:"policy"`
	Updated int    `json:"updated"`
	Created int    `json:"created"`
	Deleted int    `json:"deleted"`
	// Requests counts the writes sent and the events pages read.
	Requests int `json:"requests"`
	// Conflicts are the fields changed on both sides, each with both
	// values: the loser's value is kept here.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Rejected are the rows Stripe (or the request schema) refused this
	// run; they stay unsynced until they change again.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Held counts rows still refused by an earlier run and unchanged since,
	// so not sent again.
	Held  int      `json:"held,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Conflict is one field changed in the database and in Stripe since the
// last run. Values are JSON; Remembered is what both sides started from.
type Conflict struct {
	Stream     string          `json:"stream"`
	ID         string          `json:"id"`
	Field      string          `json:"field"`
	Database   json.RawMessage `json:"database"`
	Stripe     json.RawMessage `json:"stripe"`
	Remembered json.RawMessage `json:"remembered"`
	// Winner is "database" or "stripe".
	Winner string `json:"winner"`
	// StripeChanged is the created time of Stripe's event; DatabaseChanged
	// the row's _stripeline_edited_at, or the run's start without it.
	StripeChanged   int64 `json:"stripe_changed"`
	DatabaseChanged int64 `json:"database_changed"`
}

// Rejection is one row Stripe, or the request schema, refused.
type Rejection struct {
	Stream string `json:"stream"`
	ID     string `json:"id"`
	// Op is update, create or delete.
	Op      string `json:"op"`
	Param   string `json:"param,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}
