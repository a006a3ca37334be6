package emulator

import "fmt"

func (g *gen) standalonePayments() {
	n := g.n(4, 5)
	for i := 0; i < n; i++ {
		c := g.plain[g.r.IntN(len(g.plain))]
		g.charge(c, int64(100*(1+g.r.IntN(500))), c.currency, g.when(c.created), g.pick([]string{"One-time purchase", "Top-up", "Commande n° 42", "注文"}), "")
	}
}

func (g *gen) refundsAndDisputes() {
	for _, ch := range g.charges {
		x := g.r.IntN(100)
		switch {
		case x < 5:
			id := g.id("re_")
			created := g.when(ch.created)
			amount := ch.amount
			if g.r.IntN(2) == 0 {
				amount /= 2
			}
			t := g.id("txn_")
			g.put("balance_transactions", t, created, "", fields{{"id", t}, {"created", created}, {"amount", -amount}, {"fee", 0}, {"net", -amount}, {"currency", ch.currency},
				{"available_on", created}, {"type", "refund"}, {"source", id}, {"status", "available"}, {"reporting_category", "refund"}, {"description", "REFUND FOR CHARGE"}, {"fee_details", []any{}}})
			g.put("refunds", id, created, "", fields{{"id", id}, {"created", created}, {"amount", amount}, {"charge", ch.id}, {"payment_intent", ch.pi}, {"currency", ch.currency},
				{"status", "succeeded"}, {"reason", g.pick([]string{"requested_by_customer", "duplicate", "fraudulent"})}, {"balance_transaction", t}, {"metadata", g.metadata()}})
			g.patch("charges", ch.id, fields{{"amount_refunded", amount}, {"refunded", amount == ch.amount}})
		case x < 6:
			id := g.id("dp_")
			created := g.when(ch.created)
			status := g.pick([]string{"won", "lost", "needs_response", "under_review"})
			g.put("disputes", id, created, "", fields{{"id", id}, {"created", created}, {"amount", ch.amount}, {"charge", ch.id}, {"payment_intent", ch.pi}, {"currency", ch.currency},
				{"status", status}, {"reason", g.pick([]string{"fraudulent", "product_not_received", "duplicate", "general"})}, {"is_charge_refundable", false}, {"metadata", g.metadata()},
				{"evidence_details", sub{g.nest("dispute", "evidence_details"), fields{{"due_by", created + 7*day}, {"has_evidence", status != "needs_response"}, {"past_due", false}, {"submission_count", 0}}}}})
		}
	}
}

// patch re-renders a generated object with more overrides.
func (g *gen) patch(stream, id string, over fields) {
	t := g.a.tables[stream]
	r := t.byID[id]
	if r == nil {
		return
	}
	if b, err := patchJSON(r.data, over); err == nil {
		r.data = b
	}
}

func (g *gen) payouts() {
	n := g.n(0.5, 3)
	step := threeYears / int64(n)
	for i := 0; i < n; i++ {
		id := g.id("po_")
		created := g.start + int64(i)*step + int64(g.r.IntN(int(day)))
		amount := int64(10000 + g.r.IntN(5000000))
		t := g.id("txn_")
		status := "paid"
		if created > g.now-2*day {
			status = "in_transit"
		} else if g.r.IntN(40) == 0 {
			status = "failed"
		}
		g.put("balance_transactions", t, created, "", fields{{"id", t}, {"created", created}, {"amount", -amount}, {"fee", 0}, {"net", -amount}, {"currency", "usd"},
			{"available_on", created}, {"type", "payout"}, {"source", id}, {"status", "available"}, {"reporting_category", "payout"}, {"description", "STRIPE PAYOUT"}, {"fee_details", []any{}}})
		g.put("payouts", id, created, "", fields{{"id", id}, {"created", created}, {"amount", amount}, {"arrival_date", created + 2*day}, {"currency", "usd"}, {"status", status},
			{"method", "standard"}, {"type", "bank_account"}, {"source_type", "card"}, {"balance_transaction", t}, {"automatic", true}, {"statement_descriptor", nil}, {"metadata", g.metadata()},
			{"reconciliation_status", "completed"}})
	}
}

func (g *gen) creditNotes() {
	for i, inv := range g.paidInv {
		if i%25 != 3 {
			continue
		}
		id := g.id("cn_")
		created := g.when(inv.created)
		amount := inv.amount / 2
		g.put("credit_notes", id, created, "", fields{{"id", id}, {"created", created}, {"invoice", inv.id}, {"customer", inv.customer}, {"amount", amount}, {"currency", inv.currency},
			{"subtotal", amount}, {"total", amount}, {"subtotal_excluding_tax", amount}, {"total_excluding_tax", amount}, {"status", "issued"}, {"type", "post_payment"},
			{"post_payment_amount", amount}, {"number", fmt.Sprintf("CN-%05d", i)}, {"pdf", "https://pay.stripe.com/credit_notes/" + id + "/pdf"}, {"effective_at", created},
			{"reason", g.pick([]string{"duplicate", "fraudulent", "order_change", "product_unsatisfactory"})}, {"memo", nil}, {"metadata", g.metadata()},
			{"lines", g.list("/v1/credit_notes/"+id+"/lines", nil, false)}})
	}
}

func (g *gen) checkoutSessions() {
	n := g.n(2, 3)
	for i := 0; i < n; i++ {
		c := g.plain[g.r.IntN(len(g.plain))]
		id := g.id("cs_test_")
		created := g.when(c.created)
		status := g.pick([]string{"complete", "complete", "complete", "expired", "open"})
		if status == "open" && created < g.now-day {
			status = "expired"
		}
		var total int64
		var kids []*record
		for j, m := 0, 1+g.r.IntN(3); j < m; j++ {
			p := g.prices[g.r.IntN(len(g.prices))]
			li := g.id("li_")
			qty := 1 + g.r.IntN(3)
			amt := p.amount * int64(qty)
			total += amt
			kids = append(kids, g.put("checkout_sessions_line_items", li, created, id, fields{{"id", li}, {"amount_subtotal", amt}, {"amount_total", amt}, {"amount_discount", 0}, {"amount_tax", 0},
				{"currency", p.currency}, {"description", g.pick(words)}, {"price", raw(p.raw)}, {"quantity", qty}, {"metadata", map[string]string{}}}))
		}
		_ = kids
		over := fields{{"id", id}, {"created", created}, {"expires_at", created + day}, {"customer", c.id}, {"customer_email", c.email}, {"mode", "payment"}, {"status", status},
			{"payment_status", map[bool]string{true: "paid", false: "unpaid"}[status == "complete"]}, {"amount_subtotal", total}, {"amount_total", total}, {"currency", c.currency},
			{"success_url", "https://example.com/success"}, {"cancel_url", "https://example.com/cancel"}, {"metadata", g.metadata()}, {"payment_method_types", []string{"card"}},
			{"ui_mode", "hosted_page"}, {"locale", nil}, {"client_reference_id", nil}}
		if status == "open" {
			over = append(over, field{"url", "https://checkout.stripe.com/c/pay/" + id})
		}
		g.put("checkout_sessions", id, created, "", over)
	}
}

func (g *gen) setupIntents() {
	n := g.n(2, 3)
	for i := 0; i < n; i++ {
		c := g.plain[g.r.IntN(len(g.plain))]
		id := g.id("seti_")
		created := g.when(c.created)
		status := g.pick([]string{"succeeded", "succeeded", "succeeded", "canceled", "requires_payment_method"})
		att := g.id("setatt_")
		over := fields{{"id", id}, {"created", created}, {"customer", c.id}, {"status", status}, {"usage", "off_session"}, {"payment_method_types", []string{"card"}},
			{"client_secret", id + "_secret_" + g.id("")[7:]}, {"metadata", g.metadata()}, {"description", nil}}
		if status == "succeeded" {
			over = append(over, field{"payment_method", c.pm}, field{"latest_attempt", att})
		}
		g.put("setup_intents", id, created, "", over)
		for k, m := 0, 1+g.r.IntN(2); k < m; k++ {
			if k > 0 {
				att = g.id("setatt_")
			}
			ac := min(created+int64(k)*60, g.now)
			st := map[bool]string{true: "succeeded", false: "failed"}[status == "succeeded" && k == m-1]
			ao := fields{{"id", att}, {"created", ac}, {"setup_intent", id}, {"customer", c.id}, {"payment_method", c.pm}, {"status", st}, {"usage", "off_session"},
				{"payment_method_details", sub{g.nest("setup_attempt", "payment_method_details"), fields{{"type", "card"}}}}}
			if st == "failed" {
				ao = append(ao, field{"setup_error", sub{g.nest("setup_attempt", "setup_error"), fields{{"type", "card_error"}, {"code", "card_declined"}, {"message", "Your card was declined."}}}})
			}
			g.put("setup_intents_attempts", att, ac, id, ao)
		}
	}
}
