package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Job modes.
const (
	modeBackfill    = "backfill"
	modeIncremental = "incremental"
	modeFull        = "full_refresh"
	modeEvents      = "events"
)

// Reasons requests are counted under besides the modes: a per-parent child
// list read while its parent is paged, re-read for a parent events named,
// or re-read in full by the periodic reconciliation.
const (
	whyPerParent = "per_parent"
	whyRefresh   = "refresh"
	whyReconcile = "reconciliation"
)

// stripeEpoch (2010-01-01) precedes every Stripe object.
const stripeEpoch = 1262304000

// openEnded is the Hi of a slice with no upper bound yet.
const openEnded = math.MaxInt64

// job is one listing of a source stream and what is done with each object.
// Jobs that page the same list from the same checkpoint are merged before
// the run starts, so a parent list is paged once for all the tables that
// hang off it (the parent itself, its embedded children, its per-parent
// children).
type job struct {
	key string // state key of the checkpoint (keys[0])
	// keys are every state key the checkpoint is saved under: one per
	// stream merged into the job.
	keys   []string
	stream string         // result and progress name
	source catalog.Stream // the list that is paged
	// params are the list parameters (status=all, test_clock=…, expand[]);
	// paramsMu guards them: a list that refuses expand[] drops it while
	// other slices are in flight.
	paramsMu sync.Mutex
	params   url.Values
	main     *table // the table whose batches carry the checkpoint
	write    bool   // write the source objects into main
	embeds   []*embed
	children []*perParent // child lists fetched per source object
	mode     string
	why      string      // the reason its list requests are counted under
	state    streamState // state at the start of the run
	sliced   bool        // created slices (else sequential pages)
	order    string      // the field the list's created filter applies to
	// fresh is set when this run rewrites the job's tables from scratch (no
	// saved state, or a full re-read starting now), not when it resumes.
	fresh bool
}

type embed struct {
	child catalog.Stream
	table *table
	field string
	// expand is set when the field comes only with expand[]=data.<field>;
	// it is read and cleared under the job's paramsMu.
	expand bool
	// includable: the field is left out unless expanded, so the parent's
	// own row keeps it empty, as a read without the expansion (or an
	// event) has it; its contents live in the child table.
	includable bool
}

type perParent struct {
	stream catalog.Stream
	table  *table
}

// childWhy is the reason the job's per-parent requests are counted under.
func (j *job) childWhy() string {
	if j.why == whyReconcile {
		return whyReconcile
	}
	return whyPerParent
}

// query returns a copy of the job's list parameters and whether they ask
// for expansions.
func (j *job) query() (url.Values, bool) {
	j.paramsMu.Lock()
	defer j.paramsMu.Unlock()
	q := make(url.Values, len(j.params)+4)
	for k, v := range j.params {
		q[k] = append([]string(nil), v...)
	}
	return q, len(j.params["expand[]"]) > 0
}

// plan turns the selection and saved state into jobs.
func (r *runner) plan(ctx context.Context, selected []catalog.Stream, saved map[string]json.RawMessage) error {
	isSelected := map[string]bool{}
	for _, s := range selected {
		isSelected[s.Name] = true
	}
	var clocks []string
	for _, s := range selected {
		src := s
		if s.Parent != "" {
			src, _ = catalog.Lookup(s.Parent)
		}
		if src.TestClock && src.Parent == "" {
			var err error
			if clocks, err = r.testClocks(ctx); err != nil {
				return err
			}
			break
		}
	}
	// perClock adds a job and, when its source list hides test-clock
	// objects, one more per clock.
	var jobs []*job
	perClock := func(mk func() *job) {
		j := mk()
		jobs = append(jobs, j)
		if !j.source.TestClock {
			return
		}
		for _, c := range clocks {
			cj := mk()
			cj.key += "@" + c
			cj.params = url.Values{"test_clock": {c}}
			jobs = append(jobs, cj)
		}
	}
	for _, s := range selected {
		if reason := unsupported(s); reason != "" {
			r.update(s.Name, func(sr *StreamResult) { sr.Skipped = reason })
			continue
		}
		switch {
		case s.Parent == "":
			perClock(func() *job {
				j := &job{key: s.Name, stream: s.Name, source: s, main: r.tables[s.Name], write: true}
				r.addEmbeds(j, s, isSelected)
				return j
			})
		case s.EmbeddedField != "":
			if isSelected[s.Parent] {
				continue // the parent's job extracts it
			}
			p, _ := catalog.Lookup(s.Parent)
			perClock(func() *job {
				return &job{key: s.Name, stream: s.Name, source: p, main: r.tables[s.Name], embeds: []*embed{r.newEmbed(p, s)}}
			})
		default:
			p, _ := catalog.Lookup(s.Parent)
			perClock(func() *job {
				return &job{key: s.Name, stream: s.Name, source: p, main: r.tables[s.Name], children: []*perParent{{stream: s, table: r.tables[s.Name]}}}
			})
		}
	}
	for _, j := range jobs {
		j.keys = []string{j.key}
		if j.params == nil {
			j.params = url.Values{}
		}
		for k, v := range j.source.ListParams {
			j.params.Set(k, v)
		}
		if err := decodeState(saved[j.key], &j.state); err != nil {
			return fmt.Errorf("stream %s: %w", j.key, err)
		}
		r.schedule(j)
	}
	r.jobs = jobs
	r.merge()
	return nil
}

// merge merges the jobs that page the same list (see mergeJobs) and sets
// each job's expansions.
func (r *runner) merge() {
	r.jobs = mergeJobs(r.jobs)
	for _, j := range r.jobs {
		j.params.Del("expand[]")
		for _, e := range j.embeds {
			if e.expand {
				j.params.Add("expand[]", "data."+e.field)
			}
		}
	}
}

// mergeJobs folds jobs that would page the same list with the same
// parameters from the same checkpoint into one: the first job that writes
// the list's own objects leads (its table carries the checkpoint), the
// others add their tables and state keys. Jobs that do not list (events
// mode) are never merged.
func mergeJobs(jobs []*job) []*job {
	byKey := map[string]*job{}
	var out []*job
	for _, j := range jobs {
		if j.mode == modeEvents {
			out = append(out, j)
			continue
		}
		q := url.Values{}
		for k, v := range j.params {
			if k != "expand[]" {
				q[k] = v
			}
		}
		k := j.source.Name + "?" + q.Encode() + "|" + j.mode + "|" + string(encodeState(j.state)) + "|" + strconv.FormatBool(j.fresh)
		m, ok := byKey[k]
		if !ok {
			byKey[k] = j
			out = append(out, j)
			continue
		}
		if j.write && !m.write {
			// The list's own table leads: its checkpoint goes with its rows.
			m.key, m.stream, m.main, m.write = j.key, j.stream, j.main, true
			m.keys = append(append([]string(nil), j.keys...), m.keys...)
		} else {
			m.keys = append(m.keys, j.keys...)
		}
		m.embeds = append(m.embeds, j.embeds...)
		m.children = append(m.children, j.children...)
	}
	return out
}

// unsupported says why a stream cannot be listed on its own, or "".
func unsupported(s catalog.Stream) string {
	if s.Parent != "" {
		p, ok := catalog.Lookup(s.Parent)
		if !ok {
			return "parent stream " + s.Parent + " is not in the catalog"
		}
		if p.Parent != "" {
			return "its parent " + p.Name + " is itself a child list, read per parent; select " + p.Name + " to replicate it"
		}
		if len(p.RequiredParams) > 0 {
			return "its parent " + p.Name + " needs query parameters"
		}
	}
	if len(s.RequiredParams) > 0 {
		return fmt.Sprintf("the list needs query parameters %v that no stream supplies", s.RequiredParams)
	}
	return ""
}

func (r *runner) addEmbeds(j *job, parent catalog.Stream, isSelected map[string]bool) {
	for _, c := range catalog.All() {
		if c.Parent == parent.Name && c.EmbeddedField != "" && isSelected[c.Name] {
			j.embeds = append(j.embeds, r.newEmbed(parent, c))
		}
	}
}

func (r *runner) newEmbed(parent, child catalog.Stream) *embed {
	e := &embed{child: child, table: r.tables[child.Name], field: child.EmbeddedField}
	// Fields that are not in the schema's required list are left out of
	// responses unless expanded (customer tax_ids, checkout line_items).
	if sch := catalog.Component(parent.Object); sch != nil {
		e.expand = true
		for _, req := range sch.Required {
			if req == child.EmbeddedField {
				e.expand = false
			}
		}
	}
	e.includable = e.expand
	return e
}

// schedule decides a job's mode and initial work from its saved state.
func (r *runner) schedule(j *job) {
	s := j.source
	j.order = orderField(s)
	j.sliced = s.Created && j.order != ""
	lo := int64(0)
	if !r.opts.StartDate.IsZero() {
		lo = r.opts.StartDate.Unix()
	}
	incremental := jobIncremental(j)
	st := j.state
	j.fresh = false
	if st.Phase == phaseDone && incremental == catalog.IncrementalEvents && len(j.children) > 0 && r.reconcileDue(st) {
		// A periodic full re-read catches what no event named.
		st = streamState{Phase: phaseDone}
		incremental = catalog.IncrementalFull
		j.why = whyReconcile
	}
	switch {
	case st.Phase == phaseBackfill:
		j.mode = modeBackfill
		switch st.Reason {
		case modeFull:
			j.mode = modeFull
		case whyReconcile:
			j.mode, j.why = whyReconcile, whyReconcile
		}
		if j.sliced && len(st.Slices) == 0 && st.Upper == 0 {
			st.Slices = []span{{Lo: lo, Hi: openEnded}}
		}
	case st.Phase == phaseDone && incremental == catalog.IncrementalEvents:
		j.mode = modeEvents
	case st.Phase == phaseDone && incremental == catalog.IncrementalCreated && j.sliced:
		j.mode = modeIncremental
		from := st.Created - int64(r.opts.LookbackDays)*86400
		st = streamState{Phase: phaseBackfill, Reason: modeIncremental, Created: st.Created, Slices: []span{{Lo: max(from, lo), Hi: openEnded}}}
	case st.Phase == phaseDone:
		j.mode = modeFull
		j.fresh = true
		st = streamState{Phase: phaseBackfill, Reason: modeFull, Since: r.rereadSince()}
		if j.sliced {
			st.Slices = []span{{Lo: lo, Hi: openEnded}}
		}
	default:
		j.mode = modeBackfill
		j.fresh = true
		st = streamState{Phase: phaseBackfill, Since: r.rereadSince()}
		if j.sliced {
			st.Slices = []span{{Lo: lo, Hi: openEnded}}
		}
	}
	if j.sliced && r.opts.WindowDays > 0 && len(st.Slices) == 1 && st.Slices[0].Hi == openEnded && st.Reason != modeIncremental {
		st.Slices = r.windows(st.Slices[0].Lo)
	}
	if j.why == whyReconcile {
		st.Reason = whyReconcile
		j.mode = whyReconcile
	}
	j.state = st
	if j.why == "" {
		j.why = j.mode
	}
	r.update(j.stream, func(sr *StreamResult) {
		if sr.Mode == "" || j.mode == modeBackfill {
			sr.Mode = j.mode
		}
	})
}

// jobIncremental is how a job follows changes once read. Embedded
// children follow their parent's events. A per-parent child list is re-read
// for the parents that events name (refresh), and in full now and then
// (reconciliation); without events on either side it is re-read in full
// every run.
func jobIncremental(j *job) string {
	if len(j.children) == 0 && (j.write || len(j.embeds) == 0) {
		return j.source.Incremental
	}
	for _, c := range j.children {
		if !refreshable(c.stream) {
			return catalog.IncrementalFull
		}
	}
	return catalog.IncrementalEvents
}

// windows cuts [lo, now) into --window-days slices up front; the
// open-ended head stays. Without a start date the windows begin at
// stripeEpoch: no Stripe object is older.
func (r *runner) windows(lo int64) []span {
	w := int64(r.opts.WindowDays) * 86400
	now := r.now().Unix()
	from := max(lo, stripeEpoch)
	slices := []span{{ID: 0, Lo: max(now, lo), Hi: openEnded}}
	if lo < from {
		slices = append(slices, span{ID: 1, Lo: lo, Hi: from})
	}
	for a := from; a < now; a += w {
		slices = append(slices, span{ID: len(slices), Lo: a, Hi: min(a+w, now)})
	}
	return slices
}

// refreshable reports whether a per-parent child list can follow events:
// the parent's events or the child's own name the parents to re-read.
func refreshable(child catalog.Stream) bool {
	p, ok := catalog.Lookup(child.Parent)
	return ok && (len(p.EventTypes) > 0 || hasEvents(child))
}

// reconcileDue reports whether a per-parent child list's periodic full
// re-read is due.
func (r *runner) reconcileDue(st streamState) bool {
	if r.opts.ReconcileEvery < 0 {
		return false
	}
	return r.now().Sub(time.Unix(st.Reconciled, 0)) >= r.opts.ReconcileEvery
}

func hasEvents(s catalog.Stream) bool {
	for _, t := range s.ObjectTypes {
		for _, st := range catalog.StreamsForObjectType(t) {
			if len(st.EventTypes) > 0 {
				return true
			}
		}
	}
	return len(s.EventTypes) > 0
}

// testClocks lists the account's test clocks: objects under them are left
// out of plain lists and need test_clock=… (STRIPE-API.md).
func (r *runner) testClocks(ctx context.Context) ([]string, error) {
	var ids []string
	q := url.Values{"limit": {"100"}}
	for {
		page, err := r.list(ctx, "test_helpers_test_clocks", "test_clocks", "/v1/test_helpers/test_clocks", q)
		if err != nil {
			// Live keys and restricted keys cannot list clocks; that only
			// means there are none to read.
			r.log.Debug("test clocks not listed", "error", err)
			return nil, nil
		}
		for _, o := range page.Data {
			ids = append(ids, gjson.GetBytes(o, "id").Str)
		}
		if !page.HasMore || len(page.Data) == 0 {
			return ids, nil
		}
		q.Set("starting_after", ids[len(ids)-1])
	}
}

// rereadSince is the Since of a complete re-read starting now, or 0 when the
// read is not complete (a --start-date leaves older objects unread).
func (r *runner) rereadSince() int64 {
	if !r.opts.StartDate.IsZero() {
		return 0
	}
	return r.floor
}

// writeTime stamps rows written by this run. It is never earlier than the
// run's floor, which is later than every stamp earlier runs wrote, so with
// whole-second stamps the rows a run writes are newer than all rows written
// before it, even by a run in the same second; re-read sweeps rely on it.
func (r *runner) writeTime() time.Time {
	now := r.now()
	if floor := time.Unix(r.floor, 0); now.Before(floor) {
		return floor
	}
	return now
}

// orderField is the field a list's created filter applies to: created,
// or date for invoice items, which have no created field.
func orderField(s catalog.Stream) string {
	if s.HasCreatedField {
		return "created"
	}
	for _, c := range s.Columns {
		if c.Name == "date" && c.Type == catalog.TypeInteger {
			return "date"
		}
	}
	return ""
}
