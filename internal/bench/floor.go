package bench

import (
	"sort"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Floor is the least time a backfill of the selected streams can take at
// the given rates and latency: max(Σ pages ÷ global rate, pages of the
// busiest endpoint ÷ endpoint rate, pages of the longest list without a
// created filter × latency), where pages are the requests the account needs
// whatever the tool (see docs/BENCHMARKS.md for the rules). A list without a
// created filter can only be paged one page after another (each page's
// cursor is the last id of the one before), so its pages cost a round trip
// each however many requests the account may have in flight.
type Floor struct {
	Pages           int64            `json:"pages"`
	Endpoint        string           `json:"busiest_endpoint"`
	EndpointPages   int64            `json:"busiest_endpoint_pages"`
	Sequential      string           `json:"longest_sequential_list,omitempty"`
	SequentialPages int64            `json:"longest_sequential_pages,omitempty"`
	Seconds         float64          `json:"seconds"`
	ByEndpoint      map[string]int64 `json:"by_endpoint"`
}

// computeFloor counts the requests a backfill of streams needs from up's
// main account:
//   - a top-level list: ceil(objects ÷ 100), and at least 1 per listing
//     (lists that hide test-clock objects are listed once more per test
//     clock), plus 1 to list the clocks;
//   - a child embedded in its parent (invoices_lines, subscriptions_items):
//     1 per parent whose embedded list has has_more (or did not come);
//   - a child listed per parent (customers_tax_ids, …): 1 per parent;
//   - events: 1 more to read the events cursor before the backfill.
//
// Requests are grouped by endpoint as Stripe's per-endpoint limit groups
// them (stripe.EndpointKey).
func computeFloor(up upstream, streams []string, globalRPS, endpointRPS float64, latency time.Duration) Floor {
	counts := up.Counts("")
	selected := map[string]bool{}
	for _, s := range streams {
		selected[s] = true
	}
	clocks := counts["test_helpers_test_clocks"]
	by := map[string]int64{}
	add := func(path string, n int64) { by[stripe.EndpointKey("GET", path)] += n }
	clocksListed := false
	var seqName string
	var seqPages int64
	for _, name := range streams {
		s, ok := catalog.Lookup(name)
		if !ok {
			continue
		}
		if s.Parent == "" && !sliceable(s) {
			if n := max(1, ceilDiv(int64(counts[name]), 100)); n > seqPages {
				seqName, seqPages = name, n
			}
		}
		switch {
		case s.Parent == "":
			jobs := int64(1)
			if s.TestClock {
				jobs += int64(clocks)
			}
			add(s.Path, max(jobs, ceilDiv(int64(counts[name]), 100)))
			if s.TestClock {
				if !clocksListed {
					add("/v1/test_helpers/test_clocks", 1)
					clocksListed = true
				}
			}
			if name == "events" {
				add(s.Path, 1)
			}
		case s.EmbeddedField != "":
			parent, ok := catalog.Lookup(s.Parent)
			if !ok {
				continue
			}
			var n int64
			for _, o := range up.Objects("", parent.Name) {
				v := gjson.GetBytes(o, s.EmbeddedField)
				if !v.IsObject() || v.Get("has_more").Bool() {
					n++
				}
			}
			if !selected[parent.Name] {
				add(parent.Path, max(1, ceilDiv(int64(counts[parent.Name]), 100)))
			}
			add(s.Path, n)
		default:
			parent, ok := catalog.Lookup(s.Parent)
			if !ok {
				continue
			}
			if !selected[parent.Name] {
				add(parent.Path, max(1, ceilDiv(int64(counts[parent.Name]), 100)))
			}
			add(s.Path, int64(counts[parent.Name]))
		}
	}
	f := Floor{ByEndpoint: by, Sequential: seqName, SequentialPages: seqPages}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.Pages += by[k]
		if by[k] > f.EndpointPages {
			f.Endpoint, f.EndpointPages = k, by[k]
		}
	}
	f.Seconds = max(float64(f.Pages)/globalRPS, float64(f.EndpointPages)/endpointRPS, float64(seqPages)*latency.Seconds())
	return f
}

// sliceable reports whether a list can be read in parallel created ranges:
// it takes a created filter and its objects carry the field it filters on
// (created, or date for invoice items).
func sliceable(s catalog.Stream) bool {
	if !s.Created {
		return false
	}
	if s.HasCreatedField {
		return true
	}
	for _, c := range s.Columns {
		if c.Name == "date" && c.Type == catalog.TypeInteger {
			return true
		}
	}
	return false
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
