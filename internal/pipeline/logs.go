package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LogLine is one structured log line of a run.
type LogLine struct {
	RunID int64     `json:"run_id"`
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	// Attrs are the line's attributes, groups flattened with dots; secrets
	// appear as their LogValue (redacted).
	Attrs map[string]any `json:"attrs,omitempty"`
}

func (s *store) appendLog(ctx context.Context, l *LogLine) error {
	attrs, err := json.Marshal(l.Attrs)
	if err != nil {
		attrs = []byte("{}")
	}
	_, err = s.exec(ctx, `INSERT INTO `+LogsTable+` (run_id, seq, at, level, msg, attrs) VALUES (?, ?, ?, ?, ?, ?)`,
		l.RunID, l.Seq, fmtTime(l.Time), l.Level, l.Msg, string(attrs))
	if err != nil {
		return fmt.Errorf("store a log line of run %d: %w", l.RunID, err)
	}
	return nil
}

// maxSeq is the last sequence number of a run's log (0: none).
func (s *store) maxSeq(ctx context.Context, runID int64) (int64, error) {
	var n *int64
	if err := s.queryRow(ctx, `SELECT MAX(seq) FROM `+LogsTable+` WHERE run_id = ?`, runID).Scan(&n); err != nil {
		return 0, fmt.Errorf("read the log of run %d: %w", runID, err)
	}
	if n == nil {
		return 0, nil
	}
	return *n, nil
}

func (s *store) logs(ctx context.Context, runID, after int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := s.query(ctx, fmt.Sprintf(`SELECT seq, at, level, msg, attrs FROM `+LogsTable+` WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT %d`, limit), runID, after)
	if err != nil {
		return nil, fmt.Errorf("read the log of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		l := LogLine{RunID: runID}
		var at, attrs string
		if err := rows.Scan(&l.Seq, &at, &l.Level, &l.Msg, &attrs); err != nil {
			return nil, fmt.Errorf("read the log of run %d: %w", runID, err)
		}
		l.Time = parseTime(at)
		_ = json.Unmarshal([]byte(attrs), &l.Attrs)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the log of run %d: %w", runID, err)
	}
	return out, nil
}

// runLog is the slog.Handler a run's engine and client log through: every
// line is stored with the run id (and told to the hub, so followers see it
// at once) and passed on to the service's own handler.
type runLog struct {
	core   *runLogCore
	attrs  []slog.Attr
	groups []string
	next   slog.Handler
}

type runLogCore struct {
	mu    sync.Mutex
	store *store
	hub   *hub
	runID int64
	seq   int64
	level slog.Leveler
	// failed remembers that storing a line failed, so the run says so once.
	failed bool
}

func newRunLog(st *store, h *hub, runID, seq int64, level slog.Leveler, next slog.Handler) *runLog {
	return &runLog{core: &runLogCore{store: st, hub: h, runID: runID, seq: seq, level: level},
		next: next.WithAttrs([]slog.Attr{slog.Int64("run_id", runID)})}
}

func (h *runLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.core.level.Level() || h.next.Enabled(ctx, l)
}

func (h *runLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= h.core.level.Level() {
		h.store(r)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *runLog) store(r slog.Record) {
	attrs := map[string]any{}
	prefix := ""
	for _, g := range h.groups {
		prefix += g + "."
	}
	for _, a := range h.attrs {
		flatten(attrs, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(attrs, prefix, a)
		return true
	})
	if len(attrs) == 0 {
		attrs = nil
	}
	c := h.core
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	line := LogLine{RunID: c.runID, Seq: c.seq, Time: r.Time, Level: r.Level.String(), Msg: r.Message, Attrs: attrs}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.store.appendLog(ctx, &line); err != nil {
		c.seq--
		if !c.failed {
			c.failed = true
			slog.New(h.next).Warn("the run's log could not be stored; lines go to the server's log only", "error", err)
		}
		return
	}
	c.hub.notify(c.runID)
}

// flatten adds a (resolved) attribute, groups as dotted keys.
func flatten(into map[string]any, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(into, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	switch v.Kind() {
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			into[prefix+a.Key] = x.Error()
		case fmt.Stringer:
			into[prefix+a.Key] = x.String()
		default:
			if _, err := json.Marshal(x); err != nil {
				into[prefix+a.Key] = fmt.Sprint(x)
			} else {
				into[prefix+a.Key] = x
			}
		}
	case slog.KindDuration:
		into[prefix+a.Key] = v.Duration().String()
	case slog.KindTime:
		into[prefix+a.Key] = v.Time().UTC().Format(time.RFC3339Nano)
	default:
		into[prefix+a.Key] = v.Any()
	}
}

func (h *runLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	prefix := ""
	for _, g := range h.groups {
		prefix += g + "."
	}
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		if prefix != "" {
			a.Key = prefix + a.Key
		}
		c.attrs = append(c.attrs, a)
	}
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *runLog) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	c.next = h.next.WithGroup(name)
	return &c
}

// hub tells the followers of a run (in this process) that it has news: a
// log line, or a change of status.
type hub struct {
	mu   sync.Mutex
	subs map[int64]map[chan struct{}]bool
}

func newHub() *hub { return &hub{subs: map[int64]map[chan struct{}]bool{}} }

// subscribe returns a channel that receives (coalesced) news of runID.
func (h *hub) subscribe(runID int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[runID] == nil {
		h.subs[runID] = map[chan struct{}]bool{}
	}
	h.subs[runID][ch] = true
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[runID], ch)
		if len(h.subs[runID]) == 0 {
			delete(h.subs, runID)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(runID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[runID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
