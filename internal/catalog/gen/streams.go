package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// dropped is a list endpoint left out of the catalog, with the reason.
type dropped struct {
	Path   string
	Reason string
}

type result struct {
	streams []catalog.Stream
	dropped []dropped
}

// skipReason says why a list endpoint is not a stream, or "". Aliases and
// deprecated lists would duplicate other streams' rows.
func skipReason(path string, o *rawOp) string {
	switch {
	case path == "/v1/balance/history":
		return "alias of /v1/balance_transactions"
	case strings.HasPrefix(path, "/v1/linked_accounts"):
		return "alias of /v1/financial_connections/accounts"
	case strings.HasSuffix(path, "/people"):
		return "alias of …/persons"
	case path == "/v1/exchange_rates":
		return "deprecated"
	case strings.HasPrefix(path, "/v1/customers/{customer}/cards"), strings.HasPrefix(path, "/v1/customers/{customer}/bank_accounts"):
		return "deprecated; the same objects come from customers_sources"
	case o.Deprecated:
		return "deprecated"
	case path == "/v1/credit_notes/preview/lines":
		return "a preview of a credit note that does not exist yet, not stored data"
	}
	return ""
}

// standardParams are list parameters every list shares.
var standardParams = map[string]bool{"limit": true, "starting_after": true, "ending_before": true, "expand": true}

type listEP struct {
	path    string
	op      *rawOp
	objects []string // component names of the items
}

func build(spec, beta *rawSpec) (*result, error) {
	res := &result{}
	events := eventTypes(spec, beta)

	var lists []listEP
	for _, path := range sortedKeys(spec.Paths) {
		o := spec.Paths[path]["get"]
		if o == nil {
			continue
		}
		objs, ok := spec.isList(okJSON(o))
		if !ok || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		if why := skipReason(path, o); why != "" {
			res.dropped = append(res.dropped, dropped{path, why})
			continue
		}
		if len(objs) == 0 {
			res.dropped = append(res.dropped, dropped{path, "the list's items have no schema"})
			continue
		}
		lists = append(lists, listEP{path, o, objs})
	}

	byPath := map[string]*catalog.Stream{}
	byName := map[string]*catalog.Stream{}
	var all []*catalog.Stream
	add := func(s *catalog.Stream) error {
		if prev, ok := byName[s.Name]; ok {
			return fmt.Errorf("stream name %s used by %s and %s", s.Name, prev.Path, s.Path)
		}
		byName[s.Name] = s
		byPath[s.Path] = s
		all = append(all, s)
		return nil
	}

	// Pass 1: top-level lists. Pass 2: lists whose parent id is a required
	// query parameter (they need pass 1's names). Pass 3: nested paths.
	for pass := 1; pass <= 3; pass++ {
		for _, l := range lists {
			nested := strings.Contains(l.path, "{")
			if nested != (pass == 3) {
				continue
			}
			required := requiredQuery(l.op)
			s := &catalog.Stream{Path: l.path, Object: l.objects[0]}
			switch {
			case pass == 3:
				i := strings.LastIndex(l.path, "/{")
				j := strings.Index(l.path[i:], "}/")
				if j < 0 {
					res.dropped = append(res.dropped, dropped{l.path, "ends in a path parameter"})
					continue
				}
				parentPath, param, child := l.path[:i], l.path[i+2:i+j], l.path[i+j+2:]
				p := byPath[parentPath]
				if p == nil {
					res.dropped = append(res.dropped, dropped{l.path, "its parent " + parentPath + " cannot be listed, so there are no ids to list it by"})
					continue
				}
				if p.Parent != "" {
					res.dropped = append(res.dropped, dropped{l.path, "its parent is itself a child list"})
					continue
				}
				s.Parent, s.ParentParam = p.Name, param
				s.Name = p.Name + "_" + strings.ReplaceAll(child, "/", "_")
				s.RequiredParams = required
			default:
				base := strings.ReplaceAll(strings.TrimPrefix(l.path, "/v1/"), "/", "_")
				if len(required) == 0 {
					if pass == 2 {
						continue
					}
					s.Name = base
					break
				}
				if pass == 1 {
					continue
				}
				s.Name = base
				for k, param := range required {
					p := queryParent(l.path, param, byName)
					if p == nil {
						continue
					}
					s.Parent, s.ParentParam, s.ParentInQuery = p.Name, param, true
					s.Name = p.Name + "_" + dropShared(lastSegment(l.path), param)
					required = append(required[:k:k], required[k+1:]...)
					break
				}
				s.RequiredParams = required
			}
			if len(s.RequiredParams) == 0 {
				s.RequiredParams = nil
			}
			if err := add(s); err != nil {
				return nil, err
			}
			fill(spec, s, l, events)
		}
	}
	topTypes := map[string]bool{}
	for _, s := range all {
		if s.Parent == "" {
			for _, t := range s.ObjectTypes {
				topTypes[t] = true
			}
		}
	}
	for _, s := range all {
		if s.Parent != "" {
			p := byName[s.Parent]
			s.EmbeddedField = embeddedField(spec, s, p)
			s.EventTypes = eventsInContext(s, p, topTypes)
		}
		s.DeleteEvent = deleteEvent(s)
		applyOverrides(s)
	}
	res.streams = order(all)
	return res, nil
}

// requiredQuery returns the list's required query parameters.
func requiredQuery(o *rawOp) []string {
	var out []string
	for _, p := range o.Parameters {
		if p.In == "query" && p.Required && !standardParams[p.Name] {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// queryParent finds the top-level stream whose ids a query parameter takes:
// "financial_account" on a treasury list → treasury_financial_accounts,
// "subscription" → subscriptions. The list's own namespace wins.
func queryParent(path, param string, byName map[string]*catalog.Stream) *catalog.Stream {
	var cands []string
	segs := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	if len(segs) > 1 {
		cands = append(cands, segs[0]+"_"+param+"s")
	}
	cands = append(cands, param+"s")
	for _, c := range cands {
		if s, ok := byName[c]; ok && s.Parent == "" && len(s.RequiredParams) == 0 {
			return s
		}
	}
	return nil
}

func lastSegment(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// dropShared drops the leading words seg shares with param:
// ("subscription_items", "subscription") → "items",
// ("setup_attempts", "setup_intent") → "attempts".
func dropShared(seg, param string) string {
	a, b := strings.Split(seg, "_"), strings.Split(param, "_")
	n := 0
	for n < len(a)-1 && n < len(b) && a[n] == b[n] {
		n++
	}
	return strings.Join(a[n:], "_")
}

// fill sets everything that follows from the list operation and the
// object schemas.
func fill(spec *rawSpec, s *catalog.Stream, l listEP, events map[string][]string) {
	s.Unpaginated = true
	for _, p := range l.op.Parameters {
		if p.In != "query" {
			continue
		}
		switch p.Name {
		case "limit":
			s.Unpaginated = false
		case "created":
			s.Created = true
		case "test_clock":
			s.TestClock = true
		}
		// A filter that has an "all" value hides objects unless set to it
		// (subscriptions leave out canceled ones by default).
		if p.Schema != nil && slices.ContainsFunc(p.Schema.Enum, func(v any) bool { return v == "all" }) {
			if s.ListParams == nil {
				s.ListParams = map[string]string{}
			}
			s.ListParams[p.Name] = "all"
		}
	}
	if g := spec.Paths[l.path+"/search"]["get"]; g != nil {
		s.Searchable = true
	}

	types := map[string]bool{}
	evs := map[string]bool{}
	cols := map[string]catalog.Column{}
	for _, obj := range l.objects {
		sch := spec.Components.Schemas[obj]
		if sch == nil {
			continue
		}
		if o := sch.Properties["object"]; o != nil {
			for _, v := range o.Enum {
				types[fmt.Sprint(v)] = true
			}
		}
		for _, e := range events[obj] {
			evs[e] = true
		}
		for name, p := range sch.Properties {
			c := column(spec, name, p)
			if prev, ok := cols[name]; ok && prev.Type != c.Type {
				c.Type = catalog.TypeJSON
				c.Expandable = false
			}
			cols[name] = c
		}
		if _, ok := spec.Components.Schemas["deleted_"+obj]; ok {
			s.Deletable = true
		}
	}
	s.ObjectTypes = sortedKeys(types)
	s.EventTypes = sortedKeys(evs)
	if len(s.EventTypes) == 0 {
		s.EventTypes = nil
	}
	if _, ok := cols["created"]; ok {
		s.HasCreatedField = true
		s.Cursor = "created"
	}
	if c, ok := cols["id"]; ok {
		s.Columns = append(s.Columns, c)
	}
	for _, name := range sortedKeys(cols) {
		if name != "id" {
			s.Columns = append(s.Columns, cols[name])
		}
	}
	for path, ops := range spec.Paths {
		if ops["delete"] != nil && strings.HasPrefix(path, l.path+"/{") && !strings.Contains(path[len(l.path)+2:], "/") {
			s.Deletable = true
		}
	}
	switch {
	case len(s.EventTypes) > 0 && s.Parent == "":
		s.Incremental = catalog.IncrementalEvents
	case s.Created:
		s.Incremental = catalog.IncrementalCreated
	default:
		s.Incremental = catalog.IncrementalFull
	}
}

// eventsInContext drops the events a child stream's objects take part in
// under another parent: bank accounts and cards are both a connected
// account's external accounts (account.external_account.*) and a
// customer's sources (customer.source.*).
func eventsInContext(s, parent *catalog.Stream, topTypes map[string]bool) []string {
	var out []string
	for _, e := range s.EventTypes {
		parts := strings.Split(e, ".")
		owner := parts[0]
		if len(parts) >= 3 && topTypes[owner] && !slices.Contains(parent.ObjectTypes, owner) && !slices.Contains(s.ObjectTypes, owner) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// override adjusts a stream where the spec alone does not say how to list
// every object.
type override struct {
	listParams map[string]string
	// satisfied are required parameters the list params supply.
	satisfied []string
}

var overrides = map[string]override{
	// scope is required: scope[type]=account lists the account's secrets.
	// Secrets scoped to a dashboard user need that user's id, which no
	// stream supplies, so they are not replicated.
	"apps_secrets": {listParams: map[string]string{"scope[type]": "account"}, satisfied: []string{"scope"}},
}

func applyOverrides(s *catalog.Stream) {
	o, ok := overrides[s.Name]
	if !ok {
		return
	}
	for k, v := range o.listParams {
		if s.ListParams == nil {
			s.ListParams = map[string]string{}
		}
		s.ListParams[k] = v
	}
	s.RequiredParams = slices.DeleteFunc(s.RequiredParams, func(p string) bool { return slices.Contains(o.satisfied, p) })
	if len(s.RequiredParams) == 0 {
		s.RequiredParams = nil
	}
}

// deleteEvent picks the event that announces a deletion of the stream's
// objects: "<type>.deleted", or the one ".deleted" event of a sub-object
// ("customer.tax_id.deleted").
func deleteEvent(s *catalog.Stream) string {
	if s.Object == "subscription" {
		// customer.subscription.deleted means the subscription was
		// canceled; the object stays retrievable and listable with
		// status=all, so it is an update, not a deletion.
		return ""
	}
	var cands []string
	for _, e := range s.EventTypes {
		if strings.HasSuffix(e, ".deleted") {
			cands = append(cands, e)
		}
	}
	for _, t := range s.ObjectTypes {
		if slices.Contains(cands, t+".deleted") {
			return t + ".deleted"
		}
	}
	if len(cands) == 1 {
		return cands[0]
	}
	return ""
}

// column types one property of an object schema.
func column(spec *rawSpec, name string, p *rawSchema) catalog.Column {
	c := catalog.Column{Name: name, Nullable: p.Nullable}
	c.Type, c.Expandable = columnType(spec, p)
	return c
}

func columnType(spec *rawSpec, p *rawSchema) (catalog.Type, bool) {
	if p.Expansion != nil {
		return catalog.TypeString, true
	}
	if p.Ref != "" {
		target := spec.Components.Schemas[refName(p.Ref)]
		if target == nil || target.Type == "object" || len(target.Properties) > 0 || target.Type == "" {
			return catalog.TypeJSON, false
		}
		return columnType(spec, target)
	}
	if len(p.AnyOf) == 1 {
		return columnType(spec, p.AnyOf[0])
	}
	if len(p.AnyOf) > 1 {
		str, refs := false, 0
		for _, a := range p.AnyOf {
			switch {
			case a.Type == "string":
				str = true
			case a.Ref != "":
				refs++
			}
		}
		if str && refs == len(p.AnyOf)-1 {
			return catalog.TypeString, true
		}
		return catalog.TypeJSON, false
	}
	switch p.Type {
	case "string":
		return catalog.TypeString, false
	case "integer":
		return catalog.TypeInteger, false
	case "boolean":
		return catalog.TypeBoolean, false
	case "number":
		return catalog.TypeNumber, false
	}
	return catalog.TypeJSON, false
}

// embeddedField finds the parent's property that embeds the first page of
// the child list: a list of the child's objects named like the child.
func embeddedField(spec *rawSpec, child, parent *catalog.Stream) string {
	want := strings.TrimPrefix(child.Name, parent.Name+"_")
	sch := spec.Components.Schemas[parent.Object]
	if sch == nil {
		return ""
	}
	p := sch.Properties[want]
	if p == nil {
		return ""
	}
	objs, ok := spec.isList(p)
	if !ok || !slices.Contains(objs, child.Object) {
		return ""
	}
	return want
}

// eventTypes maps component names to the event types whose data.object
// they are, from the beta spec's x-stripeEvent schemas, keeping only event
// types the GA spec knows (webhook endpoints' enabled_events).
func eventTypes(spec, beta *rawSpec) map[string][]string {
	known := map[string]bool{}
	if o := spec.Paths["/v1/webhook_endpoints"]["post"]; o != nil && o.RequestBody != nil {
		if b := o.RequestBody.Content["application/x-www-form-urlencoded"].Schema; b != nil {
			if ee := b.Properties["enabled_events"]; ee != nil && ee.Items != nil {
				for _, v := range ee.Items.Enum {
					known[fmt.Sprint(v)] = true
				}
			}
		}
	}
	out := map[string][]string{}
	for _, name := range sortedKeys(beta.Components.Schemas) {
		sch := beta.Components.Schemas[name]
		if sch.Event == nil || sch.Event.Type == "" {
			continue
		}
		if len(known) > 0 && !known[sch.Event.Type] {
			continue
		}
		for _, obj := range refsOf(sch.Properties["object"]) {
			out[obj] = append(out[obj], sch.Event.Type)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

// order sorts streams by name with every parent before its children.
func order(all []*catalog.Stream) []catalog.Stream {
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	done := map[string]bool{}
	var out []catalog.Stream
	for len(out) < len(all) {
		n := len(out)
		for _, s := range all {
			if !done[s.Name] && (s.Parent == "" || done[s.Parent]) {
				done[s.Name] = true
				out = append(out, *s)
			}
		}
		if len(out) == n {
			panic("catalog: parent cycle")
		}
	}
	return out
}
