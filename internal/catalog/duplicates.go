package catalog

// duplicates maps a child stream to the top-level stream that lists the
// same objects more completely. A default selection (every stream) reads
// only the top-level one: reading both costs a request per parent (or an
// expansion of every parent page) for rows the other table already holds.
// Either can still be chosen with --streams.
var duplicates = map[string]string{
	// A customer's embedded subscriptions are its active ones only;
	// /v1/subscriptions?status=all lists every subscription.
	"customers_subscriptions": "subscriptions",
	// A charge's embedded refunds are the same objects as /v1/refunds.
	"charges_refunds": "refunds",
}

// DuplicateOf returns the top-level stream that lists the same objects as
// the named stream, or "" when there is none.
func DuplicateOf(name string) string { return duplicates[name] }

// Defaults returns the streams a sync reads when none are selected: every
// stream but those another stream lists more completely.
func Defaults() []Stream {
	var out []Stream
	for _, s := range All() {
		if DuplicateOf(s.Name) == "" {
			out = append(out, s)
		}
	}
	return out
}
