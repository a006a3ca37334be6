package bench

import (
	"sort"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Floor is the least time a backfill of the selected streams can take at
// the given rates and latency: max(Σ minimum requests ÷ global rate,
// requests of the busiest endpoint ÷ endpoint rate, the longest chain of
// requests that must follow one another × latency), where the minimum
// requests are those the account needs whatever the tool (see
// docs/BENCHMARKS.md for the rules). A list without a created filter can
// only be paged one page after another (each page's cursor is the last id
// of the one before), so its pages cost a round trip each however many
// requests the account may have in flight; a per-clock listing waits for
// the clock list, a child list for its parent's page.
type Floor struct {
	Pages           int64            `json:"pages"`
	Endpoint        string           `json:"busiest_endpoint"`
	EndpointPages   int64            `json:"busiest_endpoint_pages"`
	Sequential      string           `json:"longest_sequential_list,omitempty"`
	SequentialPages int64            `json:"longest_sequential_pages,omitempty"`
	Seconds         float64          `json:"seconds"`
	ByEndpoint      map[string]int64 `json:"by_endpoint"`
	// ByStream is each selected stream's share of Pages (a parent list
	// paged for a child that is selected alone counts under the child).
	ByStream map[string]int64 `json:"by_stream"`
	// TestClocks is the number of test clocks; ClockListings the listings
	// made once per clock (one per clock per test-clock-aware list).
	TestClocks    int   `json:"test_clocks,omitempty"`
	ClockListings int64 `json:"clock_listings,omitempty"`
}

// pageSize is the largest page a list returns (limit=100); embeddedPage the
// children a parent embeds before its list says has_more.
const (
	pageSize     = 100
	embeddedPage = 10
)

// floorCounter counts the minimum requests of a backfill from the
// emulator's data of the main account.
type floorCounter struct {
	up       upstream
	counts   map[string]int
	selected map[string]bool
	clocks   []string
	by       map[string]int64
	byStream map[string]int64
	paged    map[string]bool  // top-level lists counted already
	chain    map[string]int64 // a top-level list's longest chain of pages
	clocksIn bool             // the clock list is counted
	f        Floor
}

// computeFloor counts the requests a backfill of streams needs from up's
// main account:
//   - a top-level list: ceil(objects ÷ 100) pages and at least one request
//     per listing; lists that hide test-clock objects are listed once more
//     per test clock (each listing paged on its own), after the clocks are
//     listed (ceil(clocks ÷ 100) pages, shared with the test clock stream);
//     an unpaginated list is one request;
//   - a parent list is paged once for all its child lists;
//   - a child embedded in its parent (invoice lines, subscription items,
//     customer tax ids with expand[]): only the remainder of parents with
//     more than the ten embedded children, ceil((children − 10) ÷ 100)
//     pages each;
//   - a child listed per parent (customers' payment methods, …): one
//     request per parent, more for a parent with over 100 children;
//   - a child list of the same objects as a selected top-level list
//     (customers_subscriptions and subscriptions?status=all): nothing;
//   - streams the engine cannot list (a required parameter no stream
//     supplies, a parent that is itself a child): nothing;
//   - events: one more request to read the events cursor before the backfill.
//
// Requests are grouped by endpoint as Stripe's per-endpoint limit groups
// them (stripe.EndpointKey).
func computeFloor(up upstream, streams []string, globalRPS, endpointRPS float64, latency time.Duration) Floor {
	fc := &floorCounter{up: up, counts: up.Counts(""), selected: map[string]bool{}, by: map[string]int64{},
		byStream: map[string]int64{}, paged: map[string]bool{}, chain: map[string]int64{}}
	for _, s := range streams {
		fc.selected[s] = true
	}
	for _, o := range up.Objects("", "test_helpers_test_clocks") {
		fc.clocks = append(fc.clocks, gjson.GetBytes(o, "id").Str)
	}
	fc.f.TestClocks = len(fc.clocks)
	for _, name := range streams {
		s, ok := catalog.Lookup(name)
		if !ok || !readable(s) {
			continue
		}
		switch {
		case s.Parent == "":
			fc.topLevel(s, name)
			if name == "events" {
				fc.add(name, s.Path, 1)
			}
		case fc.selected[catalog.DuplicateOf(name)]:
			// The top-level list holds the same objects.
		case s.EmbeddedField != "":
			fc.embedded(s)
		default:
			fc.perParent(s)
		}
	}
	f := fc.f
	f.ByEndpoint, f.ByStream = fc.by, fc.byStream
	keys := make([]string, 0, len(fc.by))
	for k := range fc.by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.Pages += fc.by[k]
		if fc.by[k] > f.EndpointPages {
			f.Endpoint, f.EndpointPages = k, fc.by[k]
		}
	}
	f.Seconds = max(float64(f.Pages)/globalRPS, float64(f.EndpointPages)/endpointRPS, float64(f.SequentialPages)*latency.Seconds())
	return f
}

func (fc *floorCounter) add(stream, path string, n int64) {
	fc.by[stripe.EndpointKey("GET", path)] += n
	fc.byStream[stream] += n
}

// sequential records a chain of n requests that must follow one another.
func (fc *floorCounter) sequential(stream string, n int64) {
	if n > fc.f.SequentialPages {
		fc.f.Sequential, fc.f.SequentialPages = stream, n
	}
}

// listPages is the requests of one listing of n objects.
func listPages(s catalog.Stream, n int) int64 {
	if s.Unpaginated {
		return 1
	}
	return max(1, ceilDiv(int64(n), pageSize))
}

// topLevel counts the listings of a top-level list once (for itself or
// for the child that needs it), charged to stream.
func (fc *floorCounter) topLevel(s catalog.Stream, stream string) {
	if fc.paged[s.Name] {
		return
	}
	fc.paged[s.Name] = true
	if !s.TestClock {
		n := listPages(s, fc.counts[s.Name])
		fc.add(stream, s.Path, n)
		fc.chain[s.Name] = 1
		if !sliceable(s) {
			fc.chain[s.Name] = n
		}
		fc.sequential(s.Name, fc.chain[s.Name])
		return
	}
	// Plain listing and one per clock, by each object's test_clock.
	perClock := map[string]int{}
	for _, o := range fc.up.Objects("", s.Name) {
		perClock[gjson.GetBytes(o, "test_clock").Str]++
	}
	plain := listPages(s, perClock[""])
	fc.add(stream, s.Path, plain)
	var longest int64
	for _, c := range fc.clocks {
		n := listPages(s, perClock[c])
		fc.add(stream, s.Path, n)
		fc.f.ClockListings++
		longest = max(longest, n)
	}
	clockPages := fc.clockList(stream)
	if sliceable(s) {
		plain, longest = 1, min(longest, 1)
	}
	fc.chain[s.Name] = max(plain, clockPages+longest)
	fc.sequential(s.Name, fc.chain[s.Name])
}

// clockList counts listing the test clocks once (nothing more when the
// test clock stream is selected: its pages list them) and returns its pages.
func (fc *floorCounter) clockList(stream string) int64 {
	clocks, _ := catalog.Lookup("test_helpers_test_clocks")
	n := listPages(clocks, len(fc.clocks))
	if !fc.clocksIn && !fc.selected[clocks.Name] {
		fc.add(stream, clocks.Path, n)
	}
	fc.clocksIn = true
	return n
}

// parent pages the parent of child s when it is not selected, and returns it.
func (fc *floorCounter) parent(s catalog.Stream) (catalog.Stream, bool) {
	p, ok := catalog.Lookup(s.Parent)
	if !ok {
		return p, false
	}
	fc.topLevel(p, s.Name)
	return p, true
}

func (fc *floorCounter) embedded(s catalog.Stream) {
	p, ok := fc.parent(s)
	if !ok {
		return
	}
	var n, longest int64
	for _, kids := range fc.up.ChildCounts("", s.Name) {
		if kids > embeddedPage {
			pages := ceilDiv(int64(kids-embeddedPage), pageSize)
			n += pages
			longest = max(longest, pages)
		}
	}
	fc.add(s.Name, s.Path, n)
	if longest > 0 {
		fc.sequential(s.Name, fc.chain[p.Name]+longest)
	}
}

func (fc *floorCounter) perParent(s catalog.Stream) {
	p, ok := fc.parent(s)
	if !ok {
		return
	}
	n := int64(fc.counts[p.Name])
	longest := int64(1)
	for _, kids := range fc.up.ChildCounts("", s.Name) {
		if pages := ceilDiv(int64(kids), pageSize); pages > 1 {
			n += pages - 1
			longest = max(longest, pages)
		}
	}
	fc.add(s.Name, s.Path, n)
	if n > 0 {
		fc.sequential(s.Name, fc.chain[p.Name]+longest)
	}
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

// readable reports whether a sync can list the stream at all: not when it
// needs query parameters no stream supplies, nor when its parent does or
// is itself a child (the engine skips such streams and says why).
func readable(s catalog.Stream) bool {
	if len(s.RequiredParams) > 0 {
		return false
	}
	if s.Parent == "" {
		return true
	}
	p, ok := catalog.Lookup(s.Parent)
	return ok && p.Parent == "" && len(p.RequiredParams) == 0
}

// everyStream is the selection a sync of every stream reads: the engine's
// default (catalog.Defaults, which leaves out child lists another list
// holds in full).
func everyStream() []string {
	var out []string
	for _, s := range catalog.Defaults() {
		out = append(out, s.Name)
	}
	return out
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
