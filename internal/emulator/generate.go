package emulator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

const (
	day         = int64(86400)
	threeYears  = 3 * 365 * day
	eventWindow = 30 * day
)

// gen builds one account's data. Everything it draws comes from r, so the
// account is a function of the seed, the size and the clock.
type gen struct {
	e     *Emulator
	a     *account
	r     *rand.Rand
	now   int64
	start int64
	u     float64 // objects per 1% of the account

	clocks   []string
	nClocks  int // test clocks to make
	shape    string
	taxRates []string
	coupons  []string
	products []prodInfo
	prices   []priceInfo
	plain    []custInfo // customers under no test clock
	clocked  []custInfo // customers under a test clock
	charges  []chargeInfo
	paidInv  []invInfo
	buf      []byte // render scratch
}

type prodInfo struct {
	id, name string
	created  int64
}

type priceInfo struct {
	id, product, currency, interval string
	item                            string // the subscription item billing it
	amount                          int64
	created                         int64
	raw                             []byte
}

type custInfo struct {
	id, name, email, pm, clock, currency string
	created                              int64
}

type chargeInfo struct {
	id, customer, pi, currency string
	amount, created            int64
}

type invInfo struct {
	id, customer, currency string
	amount, created        int64
}

var (
	firstNames = []string{"Ava", "Liam", "Zoë", "José", "Łukasz", "Søren", "Chloé", "Mateo", "Aiko", "Дмитрий", "محمد", "李", "Nguyễn", "Ingrid", "Olu", "Priya", "Noah", "Emma", "Björk", "Renée"}
	lastNames  = []string{"Smith", "Müller", "García", "O'Brien", "Kowalski", "Østergaard", "Dubois", "Rossi", "Tanaka", "Иванов", "Haddad", "王", "Trần", "Johansson", "Adeyemi", "Patel", "Brown", "\"Quoted\" Jones", "Ng", "D'Amico"}
	domains    = []string{"example.com", "example.org", "mail.example.net", "corp.example"}
	words      = []string{"Pro", "Starter", "Team", "Enterprise", "Add-on", "Seats", "Storage", "Support", "Analytics", "API calls", "Premium ✨", "Basic", "Plus", "Café bundle", "Über plan"}
	currencies = []string{"usd", "usd", "usd", "usd", "eur", "eur", "gbp"}
	countries  = []string{"US", "US", "US", "DE", "FR", "GB", "JP", "BR", "IN", "NL"}
	brands     = []string{"visa", "visa", "mastercard", "amex", "discover"}
)

func (e *Emulator) generate(seed int64, objects int, now int64, index int, clocks int, shape string) *account {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(index)+0x9e3779b97f4a7c15))
	a := &account{tables: map[string]*table{}, idem: map[string]*idemEntry{}, connected: index > 0}
	a.id = "acct_" + strings.ToUpper(fmt.Sprintf("%016x", r.Uint64()))[:16]
	if index == 0 {
		a.name, a.email, a.country = "Stripeline Demo Co.", "owner@example.com", "US"
	} else {
		a.name = fmt.Sprintf("Connected Shop %d — Ünïcode", index)
		a.email = fmt.Sprintf("shop%d@example.com", index)
		a.country = countries[r.IntN(len(countries))]
	}
	a.created = now - threeYears - 30*day
	a.events = newTable(nil)
	for _, d := range defs {
		a.tables[d.name] = newTable(d)
	}
	g := &gen{e: e, a: a, r: r, now: now, start: now - threeYears, u: float64(objects) / 100 / objectsPerUnit, nClocks: clocks, shape: shape}
	g.run()
	for _, t := range a.tables {
		t.sortAll()
	}
	a.events.sortAll()
	return a
}

// objectsPerUnit is how many objects (events and children included) the
// generator makes per unit of u, so that Config.Objects is about the total.
const objectsPerUnit = 1.52

func (g *gen) n(perCent float64, min int) int {
	n := int(math.Round(g.u * perCent))
	if n < min {
		n = min
	}
	return n
}

// when draws a creation time, denser in recent months like a growing business.
func (g *gen) when(after int64) int64 {
	if after < g.start {
		after = g.start
	}
	span := g.now - after
	if span <= 0 {
		return g.now
	}
	return after + int64(math.Sqrt(g.r.Float64())*float64(span))
}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) id(prefix string) string { return g.a.newID(prefix, g.r.Uint64) }

var (
	metaSources  = []string{"web", "import", "api", "partner"}
	metaSegments = []string{"smb", "mid", "ent"}
	longNote     = "Ünïcode ✓ — “quotes” & <tags> 日本語 " + strings.Repeat("long value ", 40)
	metaKeys     = func() []string {
		var out []string
		for i := 0; i < 20; i++ {
			out = append(out, fmt.Sprintf("key_%02d", i))
		}
		return out
	}()
)

// metadata draws an object's metadata: often none, sometimes long values,
// unicode, or many keys. Keys are in sorted order.
func (g *gen) metadata() any {
	switch x := g.r.IntN(10); {
	case x < 4:
		return fields{}
	case x < 8:
		return fields{{"segment", g.pick(metaSegments)}, {"source", g.pick(metaSources)}}
	case x < 9:
		return fields{{"note", longNote}, {"order_id", strconv.Itoa(g.r.IntN(1e6))}}
	default:
		m := make(fields, len(metaKeys))
		for i, k := range metaKeys {
			m[i] = field{k, "value " + strconv.Itoa(g.r.IntN(1000))}
		}
		return m
	}
}

// put renders and stores an object.
func (g *gen) put(stream, id string, created int64, parent string, over fields) *record {
	t := g.a.tables[stream]
	tp := g.e.tpls.component(t.def.object)
	g.buf = tp.render(g.buf[:0], over)
	data := append([]byte(nil), g.buf...) // exact size, no zeroing
	rec := &record{id: id, created: created, parent: parent, data: data}
	t.byID[id] = rec
	t.recs = append(t.recs, rec)
	if t.def.parent != "" {
		t.kids[parent] = append(t.kids[parent], rec)
	}
	return rec
}

func (g *gen) nest(object string, path ...string) *tmpl { return g.e.tpls.nested(object, path...) }

func (g *gen) list(url string, data []raw, more bool) fields {
	if data == nil {
		data = []raw{}
	}
	return fields{{"object", "list"}, {"data", data}, {"has_more", more}, {"url", url}}
}

func (g *gen) run() {
	g.testClocks()
	g.taxRatesAndCoupons()
	g.catalog()
	g.customersAndMethods()
	g.subscriptionsAndInvoices()
	g.oneOffInvoices()
	g.standalonePayments()
	g.refundsAndDisputes()
	g.payouts()
	g.creditNotes()
	g.checkoutSessions()
	g.setupIntents()
	if g.shape == ShapeSmallStreams {
		g.smallStreams()
	}
	g.events()
}

// Stripe's test clock limits (docs.stripe.com/billing/testing/test-clocks):
// a clock deletes itself a week after it was created, and holds at most
// three customers.
const (
	clockLifetime     = 7 * day
	customersPerClock = 3
)

// testClocks makes the account's test clocks, all created within the last
// week (older ones would have deleted themselves), each frozen at a time
// between its creation and now.
func (g *gen) testClocks() {
	for i := 0; i < g.nClocks; i++ {
		id := g.id("clock_")
		created := g.now - day/2 - int64(g.r.IntN(int(clockLifetime-day)))
		frozen := created + int64(g.r.IntN(int(g.now-created)))
		g.put("test_helpers_test_clocks", id, created, "", fields{
			{"id", id}, {"created", created}, {"deletes_after", created + clockLifetime}, {"frozen_time", frozen},
			{"name", fmt.Sprintf("Renewal simulation %d", i+1)}, {"status", "ready"},
		})
		g.clocks = append(g.clocks, id)
	}
}

func (g *gen) taxRatesAndCoupons() {
	for i, n := 0, g.n(0.05, 3); i < n; i++ {
		id := g.id("txr_")
		created := g.when(0)
		pct := []float64{7.25, 19, 20, 8.875, 10}[i%5]
		country := []string{"US", "DE", "GB", "US", "JP"}[i%5]
		g.put("tax_rates", id, created, "", fields{
			{"id", id}, {"created", created}, {"active", i%7 != 6}, {"display_name", []string{"Sales tax", "MwSt.", "VAT", "NYC tax", "消費税"}[i%5]},
			{"percentage", pct}, {"effective_percentage", pct}, {"country", country}, {"inclusive", i%2 == 1}, {"jurisdiction", country},
			{"tax_type", []string{"sales_tax", "vat", "vat", "sales_tax", "jct"}[i%5]}, {"rate_type", "percentage"}, {"metadata", g.metadata()},
		})
		g.taxRates = append(g.taxRates, id)
	}
	for i, n := 0, g.n(0.2, 3); i < n; i++ {
		id := g.id("")[:0] + fmt.Sprintf("CPN%s", g.id("")[7:])
		created := g.when(0)
		over := fields{{"id", id}, {"created", created}, {"name", g.pick([]string{"Launch 20%", "Black Friday", "Spring €5 off", "Loyalty", "Ünïcode promo"})},
			{"duration", g.pick([]string{"forever", "once", "repeating"})}, {"valid", g.r.IntN(5) != 0}, {"times_redeemed", g.r.IntN(200)}, {"metadata", g.metadata()}}
		if i%2 == 0 {
			over = append(over, field{"percent_off", float64(5 * (1 + g.r.IntN(10)))})
		} else {
			over = append(over, field{"amount_off", int64(500 * (1 + g.r.IntN(10)))}, field{"currency", "usd"})
		}
		g.put("coupons", id, created, "", over)
		g.coupons = append(g.coupons, id)
		if i < g.n(0.2, 3) {
			pid := g.id("promo_")
			pc := g.when(created)
			g.put("promotion_codes", pid, pc, "", fields{{"id", pid}, {"created", pc}, {"active", g.r.IntN(4) != 0}, {"code", fmt.Sprintf("SAVE%d", 10+i)},
				{"promotion", sub{g.nest("promotion_code", "promotion"), fields{{"coupon", id}, {"type", "coupon"}}}},
				{"times_redeemed", g.r.IntN(50)}, {"metadata", g.metadata()}})
		}
	}
}

func (g *gen) catalog() {
	for i, n := 0, g.n(0.5, 5); i < n; i++ {
		id := g.id("prod_")
		created := g.when(0)
		name := fmt.Sprintf("%s %s", g.pick(words), g.pick(words))
		over := fields{{"id", id}, {"created", created}, {"updated", created + int64(g.r.IntN(1000))}, {"name", name}, {"active", g.r.IntN(8) != 0},
			{"description", nil}, {"metadata", g.metadata()}, {"url", nil}}
		if g.r.IntN(3) == 0 {
			over[5].v = "A product with a long description — " + strings.Repeat("ça va? ", 30)
		}
		g.put("products", id, created, "", over)
		g.products = append(g.products, prodInfo{id: id, name: name, created: created})
		for j, m := 0, 1+g.r.IntN(3); j < m; j++ {
			pid := g.id("price_")
			pc := g.when(created)
			cur := g.pick(currencies)
			amount := int64(100 * (1 + g.r.IntN(200)))
			interval := []string{"month", "month", "year", ""}[g.r.IntN(4)]
			po := fields{{"id", pid}, {"created", pc}, {"active", true}, {"currency", cur}, {"product", id}, {"unit_amount", amount},
				{"unit_amount_decimal", fmt.Sprint(amount)}, {"billing_scheme", "per_unit"}, {"tax_behavior", "unspecified"}, {"metadata", g.metadata()}}
			if interval != "" {
				po = append(po, field{"type", "recurring"}, field{"recurring", sub{g.nest("price", "recurring"), fields{{"interval", interval}, {"interval_count", 1}, {"usage_type", "licensed"}}}})
			} else {
				po = append(po, field{"type", "one_time"})
			}
			if g.r.IntN(5) == 0 {
				po = append(po, field{"lookup_key", fmt.Sprintf("%s_%d", strings.ToLower(strings.ReplaceAll(name, " ", "_")), j)}, field{"nickname", name + " " + interval})
			}
			rec := g.put("prices", pid, pc, "", po)
			g.prices = append(g.prices, priceInfo{id: pid, product: id, currency: cur, interval: interval, amount: amount, created: pc, raw: rec.data})
		}
	}
}

// customersAndMethods makes the plain customers, then one to three
// customers under each test clock, each with a default payment method and
// sometimes a tax id.
func (g *gen) customersAndMethods() {
	n := g.n(8, 10)
	for i := 0; i < n; i++ {
		g.plain = append(g.plain, g.customer(i, "", g.when(0)))
	}
	for _, clock := range g.clocks {
		since := g.a.tables["test_helpers_test_clocks"].byID[clock].created
		for k, m := 0, 1+g.r.IntN(customersPerClock); k < m; k++ {
			g.clocked = append(g.clocked, g.customer(n+len(g.clocked), clock, since+int64(g.r.IntN(int(g.now-since)+1))))
		}
	}
}

// customer makes one customer (under clock when it is not "") created at
// created, with its default payment method and sometimes a tax id.
func (g *gen) customer(i int, clock string, created int64) custInfo {
	id := g.id("cus_")
	first, last := g.pick(firstNames), g.pick(lastNames)
	email := fmt.Sprintf("user%d.%d@%s", i, g.r.IntN(1000), g.pick(domains))
	c := custInfo{id: id, name: first + " " + last, email: email, created: created, currency: g.pick(currencies), clock: clock}
	over := fields{{"id", id}, {"created", created}, {"email", email}, {"name", c.name}, {"currency", c.currency},
		{"description", nil}, {"phone", nil}, {"balance", 0}, {"delinquent", g.r.IntN(20) == 0}, {"invoice_prefix", strings.ToUpper(id[4:12])},
		{"metadata", g.metadata()}, {"preferred_locales", []string{}}, {"tax_exempt", "none"}, {"next_invoice_sequence", 1 + g.r.IntN(30)}}
	if g.r.IntN(4) == 0 {
		over[5].v = "Customer with ünïcode 🚀 and a \"quote\""
	}
	if g.r.IntN(3) == 0 {
		over[6].v = fmt.Sprintf("+1555%07d", g.r.IntN(1e7))
	}
	if g.r.IntN(2) == 0 {
		over = append(over, field{"address", sub{g.nest("customer", "address"), fields{{"city", g.pick([]string{"Berlin", "São Paulo", "New York", "東京"})}, {"country", g.pick(countries)}, {"line1", fmt.Sprintf("%d Main St", 1+g.r.IntN(999))}, {"postal_code", fmt.Sprint(10000 + g.r.IntN(89999))}}}})
	}
	if c.clock != "" {
		over = append(over, field{"test_clock", c.clock})
	}
	// The default payment method.
	pm := g.id("pm_")
	c.pm = pm
	over = append(over, field{"invoice_settings", sub{g.nest("customer", "invoice_settings"), fields{{"default_payment_method", pm}}}})
	rec := g.put("customers", id, created, "", over)
	rec.clock = c.clock
	pmc := g.when(created)
	brand := g.pick(brands)
	last4 := fmt.Sprintf("%04d", g.r.IntN(10000))
	g.put("payment_methods", pm, pmc, "", fields{{"id", pm}, {"created", pmc}, {"customer", id}, {"type", "card"}, {"allow_redisplay", "unspecified"},
		{"billing_details", sub{g.nest("payment_method", "billing_details"), fields{{"email", email}, {"name", c.name}}}},
		{"card", sub{g.nest("payment_method", "card"), fields{{"brand", brand}, {"display_brand", brand}, {"last4", last4}, {"exp_month", 1 + g.r.IntN(12)}, {"exp_year", 2027 + g.r.IntN(6)}, {"country", "US"}, {"funding", "credit"}, {"fingerprint", g.id("")[7:]}, {"regulated_status", "unregulated"}}}},
		{"metadata", g.metadata()}})
	if g.r.IntN(10) == 0 {
		tx := g.id("txi_")
		tc := g.when(created)
		g.put("customers_tax_ids", tx, tc, id, fields{{"id", tx}, {"created", tc}, {"customer", id}, {"country", "DE"}, {"type", "eu_vat"}, {"value", fmt.Sprintf("DE%09d", g.r.IntN(1e9))},
			{"owner", sub{g.nest("tax_id", "owner"), fields{{"type", "customer"}, {"customer", id}}}},
			{"verification", sub{g.nest("tax_id", "verification"), fields{{"status", "verified"}, {"verified_name", c.name}}}}})
	}
	return c
}

// charge records a payment: payment intent, charge and balance transaction.
func (g *gen) charge(c custInfo, amount int64, cur string, created int64, desc string, invoice string) (string, bool) {
	pi := g.id("pi_")
	ch := g.id("ch_")
	ok := g.r.IntN(15) != 0 || invoice != ""
	status := "succeeded"
	if !ok {
		status = "failed"
	}
	var txn any
	if ok {
		t := g.id("txn_")
		txn = t
		fee := amount*29/1000 + 30
		g.put("balance_transactions", t, created, "", fields{{"id", t}, {"created", created}, {"amount", amount}, {"fee", fee}, {"net", amount - fee}, {"currency", cur},
			{"available_on", created + 2*day}, {"type", "charge"}, {"source", ch}, {"status", statusAvail(created+2*day, g.now)}, {"reporting_category", "charge"}, {"description", desc},
			{"fee_details", []any{fields{{"amount", fee}, {"application", nil}, {"currency", cur}, {"description", "Stripe processing fees"}, {"type", "stripe_fee"}}}}})
	}
	over := fields{{"id", ch}, {"created", created}, {"amount", amount}, {"amount_captured", amount}, {"amount_refunded", 0}, {"currency", cur}, {"customer", c.id},
		{"description", desc}, {"paid", ok}, {"captured", ok}, {"status", status}, {"payment_intent", pi}, {"payment_method", c.pm}, {"balance_transaction", txn},
		{"receipt_email", c.email}, {"refunded", false}, {"metadata", g.metadata()}, {"calculated_statement_descriptor", "STRIPELINE DEMO"},
		{"billing_details", sub{g.nest("charge", "billing_details"), fields{{"email", c.email}, {"name", c.name}}}},
		{"outcome", sub{g.nest("charge", "outcome"), fields{{"network_status", map[bool]string{true: "approved_by_network", false: "declined_by_network"}[ok]}, {"type", map[bool]string{true: "authorized", false: "issuer_declined"}[ok]}, {"risk_level", "normal"}, {"risk_score", g.r.IntN(60)}, {"seller_message", map[bool]string{true: "Payment complete.", false: "The bank did not return any further details with this decline."}[ok]}}}},
		{"receipt_url", "https://pay.stripe.com/receipts/" + ch}}
	if !ok {
		over = append(over, field{"failure_code", "card_declined"}, field{"failure_message", "Your card was declined."})
		over[3].v = 0
	}
	g.put("charges", ch, created, "", over)
	pist := "succeeded"
	var received int64 = amount
	if !ok {
		pist, received = "requires_payment_method", 0
	}
	g.put("payment_intents", pi, created, "", fields{{"id", pi}, {"created", created}, {"amount", amount}, {"amount_received", received}, {"amount_capturable", 0}, {"currency", cur},
		{"customer", c.id}, {"description", desc}, {"status", pist}, {"latest_charge", ch}, {"payment_method", c.pm}, {"payment_method_types", []string{"card"}},
		{"capture_method", "automatic"}, {"confirmation_method", "automatic"}, {"client_secret", pi + "_secret_" + g.id("")[7:]}, {"metadata", g.metadata()}})
	if ok {
		g.charges = append(g.charges, chargeInfo{id: ch, customer: c.id, pi: pi, currency: cur, amount: amount, created: created})
	}
	return ch, ok
}

func statusAvail(avail, now int64) string {
	if avail <= now {
		return "available"
	}
	return "pending"
}

// events records what happened in the last 30 days: a created event for
// every object created then, and updates for some of them.
func (g *gen) events() {
	since := g.now - eventWindow - 5*day // a few already expired
	for _, d := range defs {
		if d.evCreated == "" {
			continue
		}
		t := g.a.tables[d.name]
		for _, r := range t.recs {
			if r.created < since {
				continue
			}
			g.e.addEvent(g.a, d.evCreated, r.created, r.data, nil, g.r.Uint64)
			if d.evUpdated != "" && g.r.IntN(8) == 0 {
				prev := fields{{"metadata", map[string]string{}}}
				when := r.created + int64(g.r.IntN(3600))
				if when > g.now {
					when = g.now
				}
				g.e.addEvent(g.a, d.evUpdated, when, r.data, appendValue(nil, prev), g.r.Uint64)
			}
		}
	}
}
