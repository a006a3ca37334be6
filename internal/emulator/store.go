package emulator

import (
	"sort"
	"strings"
)

// streamDef is what the emulator knows about a stream it fills.
type streamDef struct {
	name, path, object, prefix string
	parent, parentParam        string
	parentInQuery              bool
	embedded                   string // field of the parent embedding the first page
	created                    bool   // the list accepts created filters
	testClock                  bool   // the list hides test-clock objects unless test_clock= is given
	deletable                  bool
	cancelOnDelete             bool // DELETE cancels (subscriptions)
	evCreated, evUpdated       string
	evDeleted                  string
	search                     bool
	// generic streams are filled from their schema by the small-streams
	// shape only (shapes.go); unpaginated lists return every object at once.
	generic, unpaginated bool
}

// defs are the streams the emulator serves from tables, in generation
// order: the hand-modelled ones, then every other top-level list of the
// catalog (empty unless the small-streams shape fills them).
var defs = append(append([]*streamDef(nil), coreDefs...), genericDefs(coreDefs)...)

// coreDefs are the streams the generator models by hand.
var coreDefs = []*streamDef{
	{name: "test_helpers_test_clocks", path: "/v1/test_helpers/test_clocks", object: "test_helpers.test_clock", prefix: "clock_", deletable: true, evCreated: "test_helpers.test_clock.created", evDeleted: "test_helpers.test_clock.deleted"},
	{name: "tax_rates", path: "/v1/tax_rates", object: "tax_rate", prefix: "txr_", created: true, evCreated: "tax_rate.created", evUpdated: "tax_rate.updated"},
	{name: "coupons", path: "/v1/coupons", object: "coupon", prefix: "", created: true, deletable: true, evCreated: "coupon.created", evUpdated: "coupon.updated", evDeleted: "coupon.deleted"},
	{name: "promotion_codes", path: "/v1/promotion_codes", object: "promotion_code", prefix: "promo_", created: true, evCreated: "promotion_code.created", evUpdated: "promotion_code.updated"},
	{name: "products", path: "/v1/products", object: "product", prefix: "prod_", created: true, deletable: true, evCreated: "product.created", evUpdated: "product.updated", evDeleted: "product.deleted", search: true},
	{name: "prices", path: "/v1/prices", object: "price", prefix: "price_", created: true, evCreated: "price.created", evUpdated: "price.updated", search: true},
	{name: "customers", path: "/v1/customers", object: "customer", prefix: "cus_", created: true, testClock: true, deletable: true, evCreated: "customer.created", evUpdated: "customer.updated", evDeleted: "customer.deleted", search: true},
	{name: "customers_tax_ids", path: "/v1/customers/{customer}/tax_ids", object: "tax_id", prefix: "txi_", parent: "customers", parentParam: "customer", deletable: true, evCreated: "customer.tax_id.created", evUpdated: "customer.tax_id.updated", evDeleted: "customer.tax_id.deleted"},
	{name: "payment_methods", path: "/v1/payment_methods", object: "payment_method", prefix: "pm_", deletable: true, evCreated: "payment_method.attached", evUpdated: "payment_method.updated", evDeleted: "payment_method.detached"},
	{name: "subscriptions", path: "/v1/subscriptions", object: "subscription", prefix: "sub_", created: true, testClock: true, deletable: true, cancelOnDelete: true, evCreated: "customer.subscription.created", evUpdated: "customer.subscription.updated", evDeleted: "customer.subscription.deleted", search: true},
	{name: "subscriptions_items", path: "/v1/subscription_items", object: "subscription_item", prefix: "si_", parent: "subscriptions", parentParam: "subscription", parentInQuery: true, embedded: "items", deletable: true},
	{name: "invoiceitems", path: "/v1/invoiceitems", object: "invoiceitem", prefix: "ii_", created: true, deletable: true, evCreated: "invoiceitem.created", evDeleted: "invoiceitem.deleted"},
	{name: "invoices", path: "/v1/invoices", object: "invoice", prefix: "in_", created: true, deletable: true, evCreated: "invoice.created", evUpdated: "invoice.updated", evDeleted: "invoice.deleted", search: true},
	{name: "invoices_lines", path: "/v1/invoices/{invoice}/lines", object: "line_item", prefix: "il_", parent: "invoices", parentParam: "invoice", embedded: "lines"},
	{name: "payment_intents", path: "/v1/payment_intents", object: "payment_intent", prefix: "pi_", created: true, evCreated: "payment_intent.created", search: true},
	{name: "charges", path: "/v1/charges", object: "charge", prefix: "ch_", created: true, evCreated: "charge.succeeded", evUpdated: "charge.updated", search: true},
	{name: "refunds", path: "/v1/refunds", object: "refund", prefix: "re_", created: true, evCreated: "refund.created", evUpdated: "refund.updated"},
	{name: "disputes", path: "/v1/disputes", object: "dispute", prefix: "dp_", created: true, evCreated: "charge.dispute.created", evUpdated: "charge.dispute.updated"},
	{name: "payouts", path: "/v1/payouts", object: "payout", prefix: "po_", created: true, evCreated: "payout.created", evUpdated: "payout.updated"},
	{name: "balance_transactions", path: "/v1/balance_transactions", object: "balance_transaction", prefix: "txn_", created: true},
	{name: "credit_notes", path: "/v1/credit_notes", object: "credit_note", prefix: "cn_", created: true, evCreated: "credit_note.created", evUpdated: "credit_note.updated"},
	{name: "checkout_sessions", path: "/v1/checkout/sessions", object: "checkout.session", prefix: "cs_test_", created: true, evCreated: "checkout.session.completed"},
	{name: "checkout_sessions_line_items", path: "/v1/checkout/sessions/{session}/line_items", object: "item", prefix: "li_", parent: "checkout_sessions", parentParam: "session"},
	{name: "setup_intents", path: "/v1/setup_intents", object: "setup_intent", prefix: "seti_", created: true, evCreated: "setup_intent.created"},
	{name: "setup_intents_attempts", path: "/v1/setup_attempts", object: "setup_attempt", prefix: "setatt_", parent: "setup_intents", parentParam: "setup_intent", parentInQuery: true, created: true},
}

var defByName = func() map[string]*streamDef {
	m := map[string]*streamDef{}
	for _, d := range defs {
		m[d.name] = d
	}
	return m
}()

// record is one stored object: compact JSON plus what lists need to order
// and filter it without decoding.
type record struct {
	id      string
	created int64
	parent  string // parent id for child streams
	clock   string // test clock id, or ""
	typ     string // event type (events only)
	data    []byte // never modified in place: updates swap the slice
	hidden  bool   // left out of plain lists (canceled subscriptions)
}

// before reports whether a sorts before b in ascending (oldest first) order;
// lists walk the order backwards, newest first, ties broken by id.
func (a *record) before(b *record) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

func keyBefore(aCreated int64, aID string, b *record) bool {
	if aCreated != b.created {
		return aCreated < b.created
	}
	return aID < b.id
}

// table holds one stream of one account.
type table struct {
	def     *streamDef
	recs    []*record // ascending; current objects only
	byID    map[string]*record
	kids    map[string][]*record // child streams: parent id → ascending
	deleted []string
	gone    map[string]*record // deleted objects, for retrieve and cursors
}

func newTable(d *streamDef) *table {
	return &table{def: d, byID: map[string]*record{}, kids: map[string][]*record{}, gone: map[string]*record{}}
}

// add inserts a record keeping the order; appending is the common case.
func (t *table) add(r *record) {
	t.byID[r.id] = r
	t.recs = insertSorted(t.recs, r)
	if t.def != nil && t.def.parent != "" {
		t.kids[r.parent] = insertSorted(t.kids[r.parent], r)
	}
}

func insertSorted(s []*record, r *record) []*record {
	if n := len(s); n == 0 || s[n-1].before(r) {
		return append(s, r)
	}
	i := sort.Search(len(s), func(i int) bool { return r.before(s[i]) })
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = r
	return s
}

func removeSorted(s []*record, r *record) []*record {
	i := sort.Search(len(s), func(i int) bool { return !s[i].before(r) })
	if i < len(s) && s[i] == r {
		return append(s[:i], s[i+1:]...)
	}
	return s
}

// remove deletes a record from the lists, remembering its id.
func (t *table) remove(r *record) {
	delete(t.byID, r.id)
	t.gone[r.id] = r
	t.recs = removeSorted(t.recs, r)
	if t.def != nil && t.def.parent != "" {
		t.kids[r.parent] = removeSorted(t.kids[r.parent], r)
	}
	t.deleted = append(t.deleted, r.id)
}

// sortAll orders records after bulk generation.
func (t *table) sortAll() {
	sort.Slice(t.recs, func(i, j int) bool { return t.recs[i].before(t.recs[j]) })
	for k, v := range t.kids {
		sort.Slice(v, func(i, j int) bool { return v[i].before(v[j]) })
		t.kids[k] = v
	}
}

// page selects one page of s (ascending) newest first.
type pageQuery struct {
	limit         int
	after, before *record // cursors (may be deleted records: only the key counts)
	gte, lte      int64   // created bounds, inclusive
	keep          func(*record) bool
}

// page returns the selected records newest first and whether more remain
// in the paging direction.
func page(s []*record, q pageQuery) ([]*record, bool) {
	lo := sort.Search(len(s), func(i int) bool { return s[i].created >= q.gte })
	hi := sort.Search(len(s), func(i int) bool { return s[i].created > q.lte })
	if q.before != nil {
		// Newer than the cursor: the limit records just above it.
		j := sort.Search(len(s), func(i int) bool { return keyBefore(q.before.created, q.before.id, s[i]) })
		if j > lo {
			lo = j
		}
		var out []*record
		more := false
		for i := lo; i < hi; i++ {
			if q.keep != nil && !q.keep(s[i]) {
				continue
			}
			if len(out) == q.limit {
				more = true
				break
			}
			out = append(out, s[i])
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return out, more
	}
	if q.after != nil {
		j := sort.Search(len(s), func(i int) bool { return !s[i].before(q.after) })
		if j < hi {
			hi = j
		}
	}
	var out []*record
	more := false
	for i := hi - 1; i >= lo; i-- {
		if q.keep != nil && !q.keep(s[i]) {
			continue
		}
		if len(out) == q.limit {
			more = true
			break
		}
		out = append(out, s[i])
	}
	return out, more
}

// account is one Stripe account's state.
type account struct {
	id        string
	name      string
	email     string
	country   string
	created   int64
	tables    map[string]*table
	events    *table
	idem      map[string]*idemEntry
	seq       uint64 // id sequence
	connected bool
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID makes a Stripe-shaped id: the prefix, a sequence (so later ids sort
// after earlier ones created in the same second) and random characters.
func (a *account) newID(prefix string, rnd func() uint64) string {
	a.seq++
	var b strings.Builder
	b.Grow(len(prefix) + 24)
	b.WriteString(prefix)
	n := a.seq
	var seq [7]byte
	for i := len(seq) - 1; i >= 0; i-- {
		seq[i] = idAlphabet[n%62]
		n /= 62
	}
	b.Write(seq[:])
	x := rnd()
	for i := 0; i < 10; i++ {
		b.WriteByte(idAlphabet[x%62])
		x /= 62
	}
	return b.String()
}
