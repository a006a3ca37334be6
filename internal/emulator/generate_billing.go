package emulator

import (
	"fmt"
	"strings"
)

func (g *gen) recurringPrices() []priceInfo {
	var out []priceInfo
	for _, p := range g.prices {
		if p.interval != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = g.prices
	}
	return out
}

// subscriptionsAndInvoices makes subscriptions of random plain customers
// and one of each customer under a test clock, with their items and
// invoices.
func (g *gen) subscriptionsAndInvoices() {
	rec := g.recurringPrices()
	n := g.n(4, 6)
	for i := 0; i < n; i++ {
		g.subscription(g.plain[g.r.IntN(len(g.plain))], rec)
	}
	for _, c := range g.clocked {
		g.subscription(c, rec)
	}
}

// subscription makes one subscription of c billing prices from rec, its
// items and its invoices so far.
func (g *gen) subscription(c custInfo, rec []priceInfo) {
	id := g.id("sub_")
	created := g.when(c.created)
	status := []string{"active", "active", "active", "active", "canceled", "canceled", "trialing", "past_due", "unpaid", "incomplete_expired"}[g.r.IntN(10)]
	nItems := 1 + g.r.IntN(3)
	var items []raw
	var itemPrices []priceInfo
	for j := 0; j < nItems; j++ {
		p := rec[g.r.IntN(len(rec))]
		si := g.id("si_")
		qty := 1 + g.r.IntN(5)
		r := g.put("subscriptions_items", si, created, id, fields{{"id", si}, {"created", created}, {"subscription", id}, {"price", raw(p.raw)}, {"quantity", qty},
			{"current_period_start", created}, {"current_period_end", created + 30*day}, {"metadata", g.metadata()}, {"tax_rates", []any{}}})
		items = append(items, r.data)
		p.amount *= int64(qty)
		p.item = si
		itemPrices = append(itemPrices, p)
	}
	cur := itemPrices[0].currency
	over := fields{{"id", id}, {"created", created}, {"customer", c.id}, {"status", status}, {"currency", cur}, {"start_date", created}, {"billing_cycle_anchor", created},
		{"collection_method", "charge_automatically"}, {"default_payment_method", c.pm}, {"metadata", g.metadata()}, {"description", nil},
		{"items", g.list("/v1/subscription_items?subscription="+id, items, false)}}
	var canceledAt int64
	if status == "canceled" || status == "incomplete_expired" {
		canceledAt = g.when(created)
		over = append(over, field{"canceled_at", canceledAt}, field{"ended_at", canceledAt},
			field{"cancellation_details", sub{g.nest("subscription", "cancellation_details"), fields{{"reason", "cancellation_requested"}, {"feedback", "too_expensive"}, {"comment", nil}}}})
	}
	if status == "trialing" {
		over = append(over, field{"trial_start", created}, field{"trial_end", created + 14*day})
	}
	if c.clock != "" {
		over = append(over, field{"test_clock", c.clock})
	}
	// Invoices of the subscription: one per period so far, capped.
	end := g.now
	if canceledAt != 0 {
		end = canceledAt
	}
	periods := int((end - created) / (30 * day))
	if periods > 2 {
		periods = 2
	}
	var latest string
	for k := 0; k <= periods; k++ {
		ps := created + int64(k)*30*day
		if ps > g.now {
			break
		}
		latest = g.invoice(c, cur, ps, id, itemPrices, nil)
	}
	if latest != "" {
		over = append(over, field{"latest_invoice", latest})
	}
	r := g.put("subscriptions", id, created, "", over)
	r.clock = c.clock
	r.hidden = status == "canceled" || status == "incomplete_expired"
}

// invoice makes an invoice with lines (from subscription prices or invoice
// items) and, when paid, its payment.
func (g *gen) invoice(c custInfo, cur string, created int64, subID string, subPrices []priceInfo, extra []priceInfo) string {
	id := g.id("in_")
	status := []string{"paid", "paid", "paid", "paid", "paid", "paid", "paid", "paid", "open", "draft", "void", "uncollectible"}[g.r.IntN(12)]
	if created > g.now-3*day && status == "paid" && g.r.IntN(2) == 0 {
		status = "open"
	}
	var lines []*record
	var total int64
	for _, p := range subPrices {
		lid := g.id("il_")
		lines = append(lines, g.put("invoices_lines", lid, created, id, fields{{"id", lid}, {"invoice", id}, {"amount", p.amount}, {"subtotal", p.amount}, {"currency", cur},
			{"description", "1 × " + p.product}, {"quantity", 1}, {"subscription", subID}, {"metadata", map[string]string{}}, {"discountable", true},
			{"period", sub{g.nest("line_item", "period"), fields{{"start", created}, {"end", created + 30*day}}}},
			{"pricing", sub{g.nest("line_item", "pricing"), fields{{"type", "price_details"}, {"unit_amount_decimal", fmt.Sprint(p.amount)}, {"price_details", sub{g.nest("line_item", "pricing", "price_details"), fields{{"price", p.id}, {"product", p.product}}}}}}},
			{"parent", sub{g.nest("line_item", "parent"), fields{{"type", "subscription_item_details"}, {"subscription_item_details", sub{g.nest("line_item", "parent", "subscription_item_details"), fields{{"subscription", subID}, {"proration", false}, {"subscription_item", p.item}}}}}}}}))
		total += p.amount
	}
	for _, p := range extra {
		ii := g.id("ii_")
		g.put("invoiceitems", ii, created, "", fields{{"id", ii}, {"date", created}, {"customer", c.id}, {"invoice", id}, {"amount", p.amount}, {"currency", cur},
			{"description", g.pick(words) + " — one-off"}, {"quantity", 1}, {"quantity_decimal", "1"}, {"net_amount", p.amount}, {"metadata", g.metadata()}, {"discountable", true},
			{"period", sub{g.nest("invoiceitem", "period"), fields{{"start", created}, {"end", created}}}},
			{"pricing", sub{g.nest("invoiceitem", "pricing"), fields{{"type", "price_details"}, {"unit_amount_decimal", fmt.Sprint(p.amount)}, {"price_details", sub{g.nest("invoiceitem", "pricing", "price_details"), fields{{"price", p.id}, {"product", p.product}}}}}}}})
		lid := g.id("il_")
		lines = append(lines, g.put("invoices_lines", lid, created, id, fields{{"id", lid}, {"invoice", id}, {"amount", p.amount}, {"subtotal", p.amount}, {"currency", cur},
			{"description", g.pick(words) + " — one-off"}, {"quantity", 1}, {"metadata", map[string]string{}}, {"discountable", true},
			{"period", sub{g.nest("line_item", "period"), fields{{"start", created}, {"end", created}}}},
			{"parent", sub{g.nest("line_item", "parent"), fields{{"type", "invoice_item_details"}, {"invoice_item_details", sub{g.nest("line_item", "parent", "invoice_item_details"), fields{{"invoice_item", ii}, {"proration", false}, {"subscription", nil}}}}}}}}))
		total += p.amount
	}
	// The embedded first page, in the order /v1/invoices/{id}/lines returns.
	first := g.firstPage(lines)
	paid := status == "paid"
	over := fields{{"id", id}, {"created", created}, {"customer", c.id}, {"customer_email", c.email}, {"customer_name", c.name}, {"currency", cur},
		{"status", status}, {"amount_due", total}, {"amount_paid", map[bool]int64{true: total}[paid]}, {"amount_remaining", map[bool]int64{false: total}[paid]},
		{"subtotal", total}, {"total", total}, {"subtotal_excluding_tax", total}, {"total_excluding_tax", total}, {"period_start", created}, {"period_end", created + 30*day},
		{"collection_method", "charge_automatically"}, {"billing_reason", map[bool]string{true: "subscription_cycle", false: "manual"}[subID != ""]}, {"attempted", status != "draft"},
		{"auto_advance", status == "draft" || status == "open"}, {"account_country", g.a.country}, {"account_name", g.a.name}, {"metadata", g.metadata()},
		{"lines", g.list("/v1/invoices/"+id+"/lines", first, len(lines) > 10)}, {"starting_balance", 0}, {"ending_balance", nil}, {"effective_at", nil}}
	if status != "draft" {
		over = append(over, field{"number", fmt.Sprintf("%s-%04d", strings.ToUpper(c.id[4:12]), 1+g.r.IntN(9999))},
			field{"hosted_invoice_url", "https://invoice.stripe.com/i/" + id}, field{"invoice_pdf", "https://pay.stripe.com/invoice/" + id + "/pdf"})
		over.set("ending_balance", 0)
		over.set("effective_at", created)
	}
	if subID != "" {
		over = append(over, field{"parent", sub{g.nest("invoice", "parent"), fields{{"type", "subscription_details"}, {"subscription_details", sub{g.nest("invoice", "parent", "subscription_details"), fields{{"subscription", subID}, {"metadata", map[string]string{}}}}}}}})
	}
	if c.clock != "" {
		over = append(over, field{"test_clock", c.clock})
	}
	var paidAt any
	if paid {
		// Nothing is created after now, not even an invoice's charge.
		paid := min(created+3600, g.now)
		paidAt = paid
		g.charge(c, total, cur, paid, "Invoice "+id, id)
		g.paidInv = append(g.paidInv, invInfo{id: id, customer: c.id, currency: cur, amount: total, created: created})
	}
	over = append(over, field{"status_transitions", sub{g.nest("invoice", "status_transitions"), fields{{"paid_at", paidAt}, {"finalized_at", map[bool]any{true: created + 60, false: nil}[status != "draft"]}}}})
	g.put("invoices", id, created, "", over)
	return id
}

// firstPage is the first ten children newest first, as the list orders them.
func (g *gen) firstPage(kids []*record) []raw {
	s := append([]*record(nil), kids...)
	sortRecords(s)
	var out []raw
	for i := len(s) - 1; i >= 0 && len(out) < 10; i-- {
		out = append(out, s[i].data)
	}
	return out
}

func (g *gen) oneOffInvoices() {
	n := g.n(3, 4)
	for i := 0; i < n; i++ {
		c := g.plain[g.r.IntN(len(g.plain))]
		created := g.when(c.created)
		k := 1 + g.r.IntN(4)
		if g.r.IntN(12) == 0 || i == 0 {
			k = 11 + g.r.IntN(15)
		}
		var items []priceInfo
		for j := 0; j < k; j++ {
			p := g.prices[g.r.IntN(len(g.prices))]
			items = append(items, p)
		}
		g.invoice(c, c.currency, created, "", nil, items)
	}
}
