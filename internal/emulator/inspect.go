package emulator

import "encoding/json"

// Objects returns every current object of a stream, as its list returns
// them (children across all parents, canceled and test-clock objects
// included), newest first.
func (e *Emulator) Objects(account, stream string) []json.RawMessage {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.account(account)
	if !ok {
		return nil
	}
	var recs []*record
	if stream == "events" {
		lo := e.unix() - eventWindow
		for _, r := range a.events.recs {
			if r.created >= lo {
				recs = append(recs, r)
			}
		}
	} else if t, ok := a.tables[e.streamName(stream)]; ok {
		recs = t.recs
	}
	out := make([]json.RawMessage, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, json.RawMessage(recs[i].data))
	}
	return out
}

// DeletedIDs returns the ids of a stream's objects deleted since New.
func (e *Emulator) DeletedIDs(account, stream string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.account(account)
	if !ok {
		return nil
	}
	if t, ok := a.tables[e.streamName(stream)]; ok {
		return append([]string(nil), t.deleted...)
	}
	return nil
}

// Counts returns the number of current objects per stream, events included.
func (e *Emulator) Counts(account string) map[string]int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.account(account)
	if !ok {
		return nil
	}
	out := map[string]int{}
	for name, t := range a.tables {
		out[name] = len(t.recs)
	}
	lo := e.unix() - eventWindow
	n := 0
	for _, r := range a.events.recs {
		if r.created >= lo {
			n++
		}
	}
	out["events"] = n
	return out
}

// ChildCounts returns how many current objects of a child stream each
// parent has, by parent id; parents without any are left out.
func (e *Emulator) ChildCounts(account, stream string) map[string]int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.account(account)
	if !ok {
		return nil
	}
	out := map[string]int{}
	if t, ok := a.tables[e.streamName(stream)]; ok {
		for parent, kids := range t.kids {
			if len(kids) > 0 {
				out[parent] = len(kids)
			}
		}
	}
	return out
}
