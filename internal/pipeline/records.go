package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/twoway"
)

// spec is what the control store keeps of a pipeline's settings.
type spec struct {
	DisplayName  string              `json:"display_name,omitempty"`
	Description  string              `json:"description,omitempty"`
	Connection   Connection          `json:"connection"`
	Dest         string              `json:"dest"`
	Streams      []string            `json:"streams,omitempty"`
	Fields       map[string][]string `json:"fields,omitempty"`
	StartDate    time.Time           `json:"start_date,omitzero"`
	LookbackDays int                 `json:"lookback_days,omitempty"`
	WindowDays   int                 `json:"window_days,omitempty"`
	Schedule     Schedule            `json:"schedule"`
	MaxRPS       float64             `json:"max_rps,omitempty"`
	EndpointRPS  float64             `json:"endpoint_rps,omitempty"`
	Concurrency  int                 `json:"concurrency,omitempty"`
	TwoWay       *twoway.Config      `json:"two_way,omitempty"`
	History      *history.Policy     `json:"history,omitempty"`
}

func specOf(p *Pipeline) spec {
	return spec{
		DisplayName: p.DisplayName, Description: p.Description, Connection: p.Connection, Dest: p.Dest,
		Streams: p.Streams, Fields: p.Fields, StartDate: p.StartDate, LookbackDays: p.LookbackDays,
		WindowDays: p.WindowDays, Schedule: p.Schedule, MaxRPS: p.MaxRPS, EndpointRPS: p.EndpointRPS,
		Concurrency: p.Concurrency, TwoWay: p.TwoWay, History: p.History,
	}
}

func (sp spec) apply(p *Pipeline) {
	p.DisplayName, p.Description, p.Connection, p.Dest = sp.DisplayName, sp.Description, sp.Connection, sp.Dest
	p.Streams, p.Fields, p.StartDate, p.LookbackDays = sp.Streams, sp.Fields, sp.StartDate, sp.LookbackDays
	p.WindowDays, p.Schedule, p.MaxRPS, p.EndpointRPS = sp.WindowDays, sp.Schedule, sp.MaxRPS, sp.EndpointRPS
	p.Concurrency, p.TwoWay = sp.Concurrency, sp.TwoWay
	p.History = sp.History
}

// record is one row of the pipelines table.
type record struct {
	p            Pipeline
	sealed       string // the encrypted API key, when stored
	paused       bool
	pausedReason string
}

const recordColumns = `name, spec, key_sealed, source, created, updated, paused, paused_reason`

func (s *store) insertPipeline(ctx context.Context, r *record) error {
	raw, err := json.Marshal(specOf(&r.p))
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO `+PipelinesTable+` (`+recordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.p.Name, string(raw), r.sealed, r.p.Source, fmtTime(r.p.Created), fmtTime(r.p.Updated), boolInt(r.paused), r.pausedReason)
	if isUniqueViolation(err) {
		return &FieldError{Field: "name", Value: r.p.Name, Err: fmt.Errorf("is taken: a pipeline of that name %w; pick another name or edit that one", ErrExists)}
	}
	if err != nil {
		return fmt.Errorf("save pipeline %s: %w", r.p.Name, err)
	}
	return nil
}

func (s *store) updatePipeline(ctx context.Context, r *record) error {
	raw, err := json.Marshal(specOf(&r.p))
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE `+PipelinesTable+` SET spec = ?, key_sealed = ?, source = ?, updated = ?, paused = ?, paused_reason = ? WHERE name = ?`,
		string(raw), r.sealed, r.p.Source, fmtTime(r.p.Updated), boolInt(r.paused), r.pausedReason, r.p.Name)
	if err != nil {
		return fmt.Errorf("save pipeline %s: %w", r.p.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pipeline %s: %w", r.p.Name, ErrNotFound)
	}
	return nil
}

// setPaused pauses or resumes a pipeline without touching its settings.
func (s *store) setPaused(ctx context.Context, name string, paused bool, reason string, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE `+PipelinesTable+` SET paused = ?, paused_reason = ?, updated = ? WHERE name = ?`, boolInt(paused), reason, fmtTime(now), name)
	if err != nil {
		return fmt.Errorf("pause pipeline %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pipeline %s: %w", name, ErrNotFound)
	}
	return nil
}

func (s *store) deletePipeline(ctx context.Context, name string) error {
	for _, q := range []string{
		`DELETE FROM ` + LogsTable + ` WHERE run_id IN (SELECT id FROM ` + RunsTable + ` WHERE pipeline = ?)`,
		`DELETE FROM ` + RunsTable + ` WHERE pipeline = ?`,
		`DELETE FROM ` + PipelinesTable + ` WHERE name = ?`,
	} {
		if _, err := s.exec(ctx, q, name); err != nil {
			return fmt.Errorf("delete pipeline %s: %w", name, err)
		}
	}
	return nil
}

func (s *store) pipeline(ctx context.Context, name string) (*record, error) {
	rows, err := s.query(ctx, `SELECT `+recordColumns+` FROM `+PipelinesTable+` WHERE name = ?`, name)
	if err != nil {
		return nil, fmt.Errorf("read pipeline %s: %w", name, err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("pipeline %q: %w (see stripeline pipelines list)", name, ErrNotFound)
	}
	return recs[0], nil
}

func (s *store) pipelines(ctx context.Context) ([]*record, error) {
	rows, err := s.query(ctx, `SELECT `+recordColumns+` FROM `+PipelinesTable+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	return scanRecords(rows)
}

func scanRecords(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]*record, error) {
	defer rows.Close()
	var out []*record
	for rows.Next() {
		r := &record{}
		var raw, created, updated string
		var paused int64
		if err := rows.Scan(&r.p.Name, &raw, &r.sealed, &r.p.Source, &created, &updated, &paused, &r.pausedReason); err != nil {
			return nil, fmt.Errorf("read pipelines: %w", err)
		}
		var sp spec
		if err := json.Unmarshal([]byte(raw), &sp); err != nil {
			return nil, fmt.Errorf("read pipeline %s: its stored settings do not decode: %w", r.p.Name, err)
		}
		sp.apply(&r.p)
		r.p.Created, r.p.Updated = parseTime(created), parseTime(updated)
		r.paused = paused != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pipelines: %w", err)
	}
	return out, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
