package pipeline

import (
	"sync"

	"github.com/stripeline/stripeline/internal/engine"
)

// StreamProgress is how far a running run has read one stream (or the
// events sweep), as the engine reports it while it goes.
type StreamProgress struct {
	Stream string `json:"stream"`
	Rows   int64  `json:"rows"`
	Pages  int64  `json:"pages"`
	Done   bool   `json:"done"`
	Error  string `json:"error,omitempty"`
}

// progressBoard keeps the live progress of the runs this process works.
type progressBoard struct {
	mu   sync.Mutex
	runs map[int64]*runProgress
}

// runProgress is one run's engine.Progress; it tells the hub of each
// change so a face that waits for news hears of it.
type runProgress struct {
	id      int64
	hub     *hub
	mu      sync.Mutex
	streams map[string]*StreamProgress
	order   []string
}

var _ engine.Progress = (*runProgress)(nil)

// start opens the progress of a run.
func (b *progressBoard) start(id int64, h *hub) *runProgress {
	p := &runProgress{id: id, hub: h, streams: map[string]*StreamProgress{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs == nil {
		b.runs = map[int64]*runProgress{}
	}
	b.runs[id] = p
	return p
}

// end forgets a run's progress once its record holds the result.
func (b *progressBoard) end(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.runs, id)
}

func (b *progressBoard) get(id int64) *runProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[id]
}

func (p *runProgress) stream(name string) *StreamProgress {
	sp := p.streams[name]
	if sp == nil {
		sp = &StreamProgress{Stream: name}
		p.streams[name] = sp
		p.order = append(p.order, name)
	}
	return sp
}

// Start is told that a stream's reading began.
func (p *runProgress) Start(stream string) {
	p.mu.Lock()
	p.stream(stream)
	p.mu.Unlock()
	p.hub.notify(p.id)
}

// Rows is told a stream's totals so far.
func (p *runProgress) Rows(stream string, rows, pages int) {
	p.mu.Lock()
	sp := p.stream(stream)
	sp.Rows, sp.Pages = int64(rows), int64(pages)
	p.mu.Unlock()
}

// Done is told that a stream ended.
func (p *runProgress) Done(stream string, err error) {
	p.mu.Lock()
	sp := p.stream(stream)
	sp.Done = true
	if err != nil {
		sp.Error = err.Error()
	}
	p.mu.Unlock()
	p.hub.notify(p.id)
}

func (p *runProgress) snapshot() []StreamProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]StreamProgress, 0, len(p.order))
	for _, name := range p.order {
		out = append(out, *p.streams[name])
	}
	return out
}

// Progress returns the live progress of a run this process is working,
// stream by stream in the order they started; nil when it works no such
// run (the run has not started, has ended, or runs in another process).
func (s *Service) Progress(runID int64) []StreamProgress {
	if p := s.progress.get(runID); p != nil {
		return p.snapshot()
	}
	return nil
}
