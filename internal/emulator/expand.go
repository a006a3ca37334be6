package emulator

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

// includedPage is how many children an expanded includable list holds, as
// Stripe documents for customer sources/tax_ids and checkout line items.
const includedPage = 10

// expandIncludable renders the includable child lists a list request asks
// for with expand[]=data.<field> (customer tax_ids, sources, …): each
// object gets the field as a list of its newest children, at most ten,
// with has_more and the child list's url. Fields that are not includable
// lists are left as they are. The caller holds e.mu.
func (e *Emulator) expandIncludable(a *account, d *streamDef, q url.Values, recs []*record) []*record {
	var kids []catalog.Stream
	for _, x := range append(q["expand[]"], q["expand"]...) {
		field, ok := strings.CutPrefix(x, "data.")
		if !ok {
			continue
		}
		for _, c := range catalog.All() {
			if c.Parent == d.name && c.EmbeddedField == field && !c.ParentInQuery {
				kids = append(kids, c)
			}
		}
	}
	if len(kids) == 0 {
		return recs
	}
	out := make([]*record, len(recs))
	for i, rec := range recs {
		data := rec.data
		for _, c := range kids {
			data = setField(data, c.EmbeddedField, e.includedList(a, c, rec.id))
		}
		cp := *rec
		cp.data = data
		out[i] = &cp
	}
	return out
}

// includedList renders the first page of one parent's child list.
func (e *Emulator) includedList(a *account, c catalog.Stream, parentID string) []byte {
	var recs []*record
	if t := a.tables[c.Name]; t != nil {
		all := t.kids[parentID]
		for i := len(all) - 1; i >= 0 && len(recs) <= includedPage; i-- {
			recs = append(recs, all[i])
		}
	}
	more := len(recs) > includedPage
	if more {
		recs = recs[:includedPage]
	}
	return renderList(strings.Replace(c.Path, "{"+c.ParentParam+"}", parentID, 1), recs, more)
}

// setField sets a top-level field of a JSON object, replacing it if present.
func setField(obj []byte, field string, value []byte) []byte {
	out := make([]byte, 0, len(obj)+len(field)+len(value)+4)
	if cur := gjson.GetBytes(obj, field); cur.Exists() && cur.Index > 0 {
		out = append(out, obj[:cur.Index]...)
		out = append(out, value...)
		return append(out, obj[cur.Index+len(cur.Raw):]...)
	}
	end := strings.LastIndexByte(string(obj), '}')
	out = append(out, obj[:end]...)
	if strings.TrimSpace(string(obj[1:end])) != "" {
		out = append(out, ',')
	}
	out = strconv.AppendQuote(out, field)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, obj[end:]...)
}
