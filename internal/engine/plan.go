package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
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

// stripeEpoch (2010-01-01) precedes every Stripe object.
const stripeEpoch = 1262304000

// openEnded is the Hi of a slice with no upper bound yet.
const openEnded = math.MaxInt64

// job is one listing of a source stream and what is done with each object.
type job struct {
	key    string         // state key
	stream string         // result and progress name
	source catalog.Stream // the list that is paged
	params url.Values     // fixed list parameters (status=all, test_clock=…)
	main   *table         // the table whose batches carry the checkpoint
	write  bool           // write the source objects into main
	embeds []*embed       // child lists embedded in each source object
	child  *perParent     // a child list fetched per source object
	mode   string
	state  streamState // state at the start of the run
	sliced bool        // created slices (else sequential pages)
	order  string      // the field the list's created filter applies to
	// fresh is set when this run rewrites the job's tables from scratch (no
	// saved state, or a full re-read starting now), not when it resumes.
	fresh bool

	mu        sync.Mutex
	committed streamState
}

type embed struct {
	child  catalog.Stream
	table  *table
	field  string
	expand bool // the field comes only with expand[]=data.<field>
}

type perParent struct {
	stream catalog.Stream
	table  *table
}

func (j *job) setCommitted(s streamState) {
	j.mu.Lock()
	j.committed = s
	j.mu.Unlock()
}

// plan turns the selection and saved state into jobs.
func (r *runner) plan(ctx context.Context, selected []catalog.Stream, saved map[string]json.RawMessage) error {
	isSelected := map[string]bool{}
	for _, s := range selected {
		isSelected[s.Name] = true
	}
	var clocks []string
	for _, s := range selected {
		if s.TestClock && s.Parent == "" {
			var err error
			if clocks, err = r.testClocks(ctx); err != nil {
				return err
			}
			break
		}
	}
	for _, s := range selected {
		if reason := unsupported(s); reason != "" {
			r.update(s.Name, func(sr *StreamResult) { sr.Skipped = reason })
			continue
		}
		switch {
		case s.Parent == "":
			j := &job{key: s.Name, stream: s.Name, source: s, main: r.tables[s.Name], write: true}
			r.addEmbeds(j, s, isSelected)
			r.jobs = append(r.jobs, j)
			for _, c := range clocks {
				if !s.TestClock {
					break
				}
				cj := &job{key: s.Name + "@" + c, stream: s.Name, source: s, main: r.tables[s.Name], write: true}
				cj.params = url.Values{"test_clock": {c}}
				r.addEmbeds(cj, s, isSelected)
				r.jobs = append(r.jobs, cj)
			}
		case s.EmbeddedField != "":
			if isSelected[s.Parent] {
				continue // the parent's job extracts it
			}
			p, ok := catalog.Lookup(s.Parent)
			if !ok {
				continue
			}
			j := &job{key: s.Name, stream: s.Name, source: p, main: r.tables[s.Name]}
			j.embeds = []*embed{r.newEmbed(p, s)}
			r.jobs = append(r.jobs, j)
		default:
			p, ok := catalog.Lookup(s.Parent)
			if !ok {
				continue
			}
			j := &job{key: s.Name, stream: s.Name, source: p, main: r.tables[s.Name], child: &perParent{stream: s, table: r.tables[s.Name]}}
			r.jobs = append(r.jobs, j)
		}
	}
	for _, j := range r.jobs {
		if j.params == nil {
			j.params = url.Values{}
		}
		for k, v := range j.source.ListParams {
			j.params.Set(k, v)
		}
		for _, e := range j.embeds {
			if e.expand {
				j.params.Add("expand[]", "data."+e.field)
			}
		}
		if err := decodeState(saved[j.key], &j.state); err != nil {
			return fmt.Errorf("stream %s: %w", j.key, err)
		}
		r.schedule(j)
		j.committed = j.state
	}
	return nil
}

// unsupported says why a stream cannot be listed on its own, or "".
func unsupported(s catalog.Stream) string {
	if s.Parent != "" {
		p, ok := catalog.Lookup(s.Parent)
		if !ok {
			return "parent stream " + s.Parent + " is not in the catalog"
		}
		if p.Parent != "" {
			return "its parent " + p.Name + " is itself a child; list it with --streams " + p.Name
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
	incremental := s.Incremental
	if j.child != nil || (j.write == false && len(j.embeds) > 0) {
		// Children follow their parent's events through embedded lists and
		// their own object's events.
		incremental = catalog.IncrementalEvents
		if j.child != nil && !hasEvents(j.child.stream) {
			incremental = catalog.IncrementalFull
		}
	}
	st := j.state
	j.fresh = false
	switch {
	case st.Phase == phaseBackfill:
		j.mode = modeBackfill
		if st.Reason == modeFull {
			j.mode = modeFull
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
		st = streamState{Phase: phaseBackfill, Reason: modeFull, Since: r.since()}
		if j.sliced {
			st.Slices = []span{{Lo: lo, Hi: openEnded}}
		}
	default:
		j.mode = modeBackfill
		j.fresh = true
		st = streamState{Phase: phaseBackfill, Since: r.since()}
		if j.sliced {
			st.Slices = []span{{Lo: lo, Hi: openEnded}}
		}
	}
	if j.sliced && r.opts.WindowDays > 0 && len(st.Slices) == 1 && st.Slices[0].Hi == openEnded && st.Reason != modeIncremental {
		// Cut [lo, now) into windows up front; the open-ended head stays.
		// Without a start date the windows begin at stripeEpoch: no Stripe
		// object is older.
		w := int64(r.opts.WindowDays) * 86400
		now := r.opts.Now().Unix()
		orig := st.Slices[0].Lo
		from := max(orig, stripeEpoch)
		slices := []span{{ID: 0, Lo: max(now, orig), Hi: openEnded}}
		if orig < from {
			slices = append(slices, span{ID: 1, Lo: orig, Hi: from})
		}
		for a := from; a < now; a += w {
			slices = append(slices, span{ID: len(slices), Lo: a, Hi: min(a+w, now)})
		}
		st.Slices = slices
	}
	j.state = st
	r.update(j.stream, func(sr *StreamResult) {
		if sr.Mode == "" || j.mode == modeBackfill {
			sr.Mode = j.mode
		}
	})
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
		page, err := r.opts.Client.ListPage(ctx, "/v1/test_helpers/test_clocks", q)
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

// since is the Since of a complete re-read starting now, or 0 when the
// read is not complete (a --start-date leaves older objects unread).
func (r *runner) since() int64 {
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
	now := r.opts.Now()
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
