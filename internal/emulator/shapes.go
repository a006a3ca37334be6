package emulator

import (
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Account shapes (Config.Shape).
const (
	// ShapeDefault holds the hand-modelled billing streams: customers,
	// products, prices, subscriptions, invoices, payments, payouts, …
	ShapeDefault = "default"
	// ShapeSmallStreams also puts two to five objects, built from their
	// schemas, in every other top-level list of the catalog (billing
	// alerts, issuing cards, terminal readers, treasury accounts, …), and a
	// quote under every third test clock: an account of ~70 small streams.
	ShapeSmallStreams = "small-streams"
)

// Shapes are the valid Config.Shape values.
var Shapes = []string{ShapeDefault, ShapeSmallStreams}

func validShape(s string) bool {
	for _, x := range Shapes {
		if s == x {
			return true
		}
	}
	return false
}

// genericDefs are the top-level lists of the catalog that core does not
// model: every one but the event log, the connected accounts (served from
// the emulator's accounts) and lists that need a query parameter no stream
// supplies. Their event types come from the catalog; the top-level tax_ids
// list (the account's own tax ids) emits none, because its object type
// shares customer.tax_id.* events with customers' tax ids.
func genericDefs(core []*streamDef) []*streamDef {
	have := map[string]bool{}
	for _, d := range core {
		have[d.path] = true
	}
	var out []*streamDef
	for _, s := range catalog.All() {
		if s.Parent != "" || have[s.Path] || s.Name == "events" || s.Name == "accounts" || len(s.RequiredParams) > 0 {
			continue
		}
		d := &streamDef{name: s.Name, path: s.Path, object: s.Object, prefix: idPrefix(s.Object), created: s.Created,
			testClock: s.TestClock, deletable: s.Deletable, generic: true, unpaginated: s.Unpaginated}
		if s.Name != "tax_ids" {
			for _, t := range s.EventTypes {
				switch {
				case strings.HasSuffix(t, ".created"):
					d.evCreated = t
				case strings.HasSuffix(t, ".updated"):
					d.evUpdated = t
				case strings.HasSuffix(t, ".deleted"):
					d.evDeleted = t
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// idPrefix makes an id prefix from an object type's words:
// "issuing.card" → "ic_", "billing_portal.configuration" → "bpc_".
func idPrefix(object string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(object, func(r rune) bool { return r == '.' || r == '_' }) {
		b.WriteByte(w[0])
	}
	return b.String() + "_"
}

// smallStreams fills every generic stream with two to five objects, and
// gives every third test clock a quote of its first customer.
func (g *gen) smallStreams() {
	for _, d := range defs {
		if !d.generic {
			continue
		}
		var more fields
		if d.name == "tax_ids" {
			// The top-level list holds the account's own tax ids.
			more = fields{{"owner", sub{g.nest("tax_id", "owner"), fields{{"type", "self"}}}}}
		}
		for i, n := 0, 2+g.r.IntN(4); i < n; i++ {
			g.genericObject(d, g.when(0), more)
		}
	}
	quotes := defByName["quotes"]
	if quotes == nil {
		return
	}
	seen := map[string]bool{}
	n := 0
	for _, c := range g.clocked {
		if seen[c.clock] {
			continue
		}
		seen[c.clock] = true
		if n++; n%3 != 1 {
			continue
		}
		since := g.a.tables["customers"].byID[c.id].created
		r := g.genericObject(quotes, since+int64(g.r.IntN(int(g.now-since)+1)), fields{{"customer", c.id}, {"test_clock", c.clock}})
		r.clock = c.clock
	}
}

// genericObject renders an object of d from its schema's defaults with an
// id, its creation time, metadata where the schema has it, the embedded
// lists of its child streams (empty, with their endpoint's url), and more.
func (g *gen) genericObject(d *streamDef, created int64, more fields) *record {
	schema := g.e.sp.component(d.object)
	id := g.id(d.prefix)
	over := fields{{"id", id}}
	if schema != nil {
		if _, ok := schema.Properties["created"]; ok {
			over = append(over, field{"created", created})
		} else {
			// Without a created field the list's order is by id alone.
			created = g.a.created
		}
		if _, ok := schema.Properties["metadata"]; ok {
			over = append(over, field{"metadata", g.metadata()})
		}
		tp := g.e.tpls.component(d.object)
		for _, c := range catalog.All() {
			if c.Parent == d.name && c.EmbeddedField != "" && tp.has(c.EmbeddedField) {
				url := replaceParam(c.Path, id)
				if c.ParentInQuery {
					url = c.Path + "?" + c.ParentParam + "=" + id
				}
				over = append(over, field{c.EmbeddedField, g.list(url, nil, false)})
			}
		}
	}
	over = append(over, more...)
	return g.put(d.name, id, created, "", over)
}
