package cli

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/stripeline/stripeline/internal/engine"
)

// stderrWriter is a command's stderr: it serialises the writes of the
// logger, the progress printer and retry notices, and while progress bars
// are drawn it prints them above the bars instead of through them.
type stderrWriter struct {
	mu    sync.Mutex
	w     io.Writer // the real stderr
	above io.Writer // the bars' writer while bars are drawn
}

// Write implements io.Writer.
func (s *stderrWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.above != nil {
		if n, err := s.above.Write(p); err == nil {
			return n, nil
		}
	}
	return s.w.Write(p)
}

func (s *stderrWriter) setAbove(w io.Writer) {
	s.mu.Lock()
	s.above = w
	s.mu.Unlock()
}

// drawing reports whether progress bars are being drawn.
func (s *stderrWriter) drawing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.above != nil
}

// syncProgress is what the sync commands drive: the engine's progress and
// range progress, and Wait once the run is over.
type syncProgress interface {
	engine.Progress
	engine.RangeProgress
	Wait()
}

var (
	_ syncProgress = (*barProgress)(nil)
	_ syncProgress = (*lineProgress)(nil)
)

// newProgress returns bars when stderr is a terminal and plain lines
// otherwise. While the bars are drawn, log lines and retry notices print
// above them.
func (a *App) newProgress() syncProgress {
	if !a.isTerminal(a.Stderr) {
		return newLineProgress(a.Stderr, a.now)
	}
	sw, ok := a.Stderr.(*stderrWriter)
	if !ok {
		return newBarProgress(a.Stderr, a.now)
	}
	b := newBarProgress(sw.w, a.now)
	sw.setAbove(b.p)
	b.onWait = func() { sw.setAbove(nil) }
	return b
}

// streamState is what a printer knows of one stream.
type streamState struct {
	started time.Time
	rows    int64
	share   float64
	ranged  bool // the stream reported the share of its created range read
	// baseAt and baseShare are the first report of this run: a resumed
	// backfill starts with part of its range read, so the pace is measured
	// from there, not from zero.
	baseAt    time.Time
	baseShare float64
	done      bool
	failed    bool
}

// tracker holds the streams' counts and coverage for a printer. Its
// methods are safe for concurrent use.
type tracker struct {
	mu      sync.Mutex
	now     func() time.Time
	streams map[string]*streamState
}

func newTracker(now func() time.Time) *tracker {
	return &tracker{now: now, streams: map[string]*streamState{}}
}

// state returns the stream's state, created on first use; t.mu is held.
func (t *tracker) state(stream string) *streamState {
	s := t.streams[stream]
	if s == nil {
		s = &streamState{started: t.now()}
		t.streams[stream] = s
	}
	return s
}

// start begins a stream, afresh if it had finished (a later phase).
func (t *tracker) start(stream string) {
	t.mu.Lock()
	if s := t.streams[stream]; s != nil && s.done {
		delete(t.streams, stream)
	}
	t.state(stream)
	t.mu.Unlock()
}

func (t *tracker) setRows(stream string, rows int) {
	t.mu.Lock()
	s := t.state(stream)
	s.rows = max(s.rows, int64(rows))
	t.mu.Unlock()
}

// cover records the share of the created range read; it only grows.
func (t *tracker) cover(stream string, share float64) {
	if math.IsNaN(share) {
		return
	}
	share = min(max(share, 0), 1)
	t.mu.Lock()
	s := t.state(stream)
	if !s.ranged {
		s.ranged, s.baseAt, s.baseShare = true, t.now(), share
	}
	s.share = max(s.share, share)
	t.mu.Unlock()
}

// finish marks the stream done and reports whether it was not already: a
// stream of several jobs (one per test clock) is told once per job.
func (t *tracker) finish(stream string, err error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(stream)
	if s.done {
		return false
	}
	s.done, s.failed = true, err != nil
	if s.ranged && err == nil {
		s.share = 1
	}
	return true
}

// status is a snapshot of one stream.
type status struct {
	streamState
	elapsed time.Duration
	left    time.Duration
	// leftKnown is false until the share has moved since the first report.
	leftKnown bool
}

func (t *tracker) status(stream string) status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(stream)
	st := status{streamState: *s, elapsed: t.now().Sub(s.started)}
	if s.ranged && !s.done {
		st.left, st.leftKnown = timeLeft(t.now().Sub(s.baseAt), s.share-s.baseShare, s.share)
	}
	return st
}

// timeLeft estimates the time to read the rest of a range at the pace so
// far: gained of the range was read in since, so (1−share) takes
// since × (1−share)/gained. A backfill reads its slices at the paced request
// rate, so the average pace is a fair guide; it is unknown until the share
// has moved.
func timeLeft(since time.Duration, gained, share float64) (time.Duration, bool) {
	switch {
	case share >= 1:
		return 0, true
	case gained <= 0 || since <= 0:
		return 0, false
	}
	return time.Duration(float64(since) * (1 - share) / gained).Round(time.Millisecond), true
}

// percent is the share as a whole percentage, rounded down so an unfinished
// stream never shows 100%.
func percent(share float64) int {
	return int(math.Floor(share*100 + 1e-9))
}

// formatLeft writes a time left the way people say it: 42s, 1m10s, 2h5m.
func formatLeft(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	return s[:len(s)-2] // drop the "0s"
}

// thousands writes n with comma separators: 12,345.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// describe is one stream's progress in words: "42% (12,345 rows, ~1m10s
// left)" for a sliced backfill, "12,345 rows" otherwise.
func (st status) describe() string {
	rows := thousands(st.rows) + " rows"
	switch {
	case st.failed:
		return "failed after " + rows
	case st.done:
		return "done, " + rows
	case st.ranged && st.leftKnown && st.share < 1:
		left := "~" + formatLeft(st.left)
		if st.left < time.Second {
			left = "<1s"
		}
		return fmt.Sprintf("%d%% (%s, %s left)", percent(st.share), rows, left)
	case st.ranged:
		return fmt.Sprintf("%d%% (%s)", percent(st.share), rows)
	}
	return rows
}

// rangeUnits is a bar's total once its stream reports coverage: the share
// is drawn in thousandths.
const rangeUnits = 1000

// barProgress draws one mpb bar per stream on a terminal: a spinner with a
// row count, which becomes a bar with a percentage and the time left once
// the stream reports the share of its created range it has read.
type barProgress struct {
	p      *mpb.Progress
	t      *tracker
	onWait func()
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
}

func newBarProgress(w io.Writer, now func() time.Time, opts ...mpb.ContainerOption) *barProgress {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(150 * time.Millisecond)}, opts...)
	return &barProgress{
		p:    mpb.New(opts...),
		t:    newTracker(now),
		bars: map[string]*mpb.Bar{},
	}
}

func (b *barProgress) bar(stream string) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	bar := b.bars[stream]
	if bar == nil {
		spin, fill := mpb.SpinnerStyle().Build(), mpb.BarStyle().Build()
		// The filler is a spinner until the bar has a total, i.e. until
		// the stream reports coverage.
		filler := mpb.BarFillerFunc(func(w io.Writer, s decor.Statistics) error {
			if s.Total > 0 {
				return fill.Fill(w, s)
			}
			return spin.Fill(w, s)
		})
		bar = b.p.MustAdd(0, filler,
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-32s", stream))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.line(stream) })),
			mpb.BarFillerClearOnComplete())
		b.bars[stream] = bar
	}
	return bar
}

// line is the text after a stream's bar.
func (b *barProgress) line(stream string) string {
	st := b.t.status(stream)
	if !st.ranged && !st.done && st.elapsed >= time.Second {
		return fmt.Sprintf("%s  %.0f rows/s", st.describe(), float64(st.rows)/st.elapsed.Seconds())
	}
	return st.describe()
}

// Start implements engine.Progress.
func (b *barProgress) Start(stream string) {
	b.mu.Lock()
	if b.t.status(stream).done {
		delete(b.bars, stream) // a later phase gets a bar of its own
	}
	b.mu.Unlock()
	b.t.start(stream)
	b.bar(stream)
}

// Rows implements engine.Progress.
func (b *barProgress) Rows(stream string, rows, _ int) {
	b.bar(stream)
	b.t.setRows(stream, rows)
}

// Covered implements engine.RangeProgress.
func (b *barProgress) Covered(stream string, share float64) {
	bar := b.bar(stream)
	first := !b.t.status(stream).ranged
	b.t.cover(stream, share)
	if first {
		bar.SetTotal(rangeUnits, false)
	}
	bar.SetCurrent(int64(b.t.status(stream).share * rangeUnits))
}

// Done implements engine.Progress.
func (b *barProgress) Done(stream string, err error) {
	bar := b.bar(stream)
	if !b.t.finish(stream, err) {
		return
	}
	switch st := b.t.status(stream); {
	case err != nil:
		bar.Abort(false)
	case st.ranged:
		bar.SetTotal(rangeUnits, true)
	default:
		bar.SetTotal(-1, true)
	}
}

// Wait stops the bars once the run is over.
func (b *barProgress) Wait() {
	if b.onWait != nil {
		b.onWait()
	}
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

// lineProgressEvery is how often lineProgress repeats a stream's progress.
const lineProgressEvery = 5 * time.Second

// lineProgress prints plain lines when stderr is not a terminal: one when a
// stream starts and ends, and at most one every few seconds per stream in
// between ("sync customers: 42% (12,345 rows, ~1m10s left)").
type lineProgress struct {
	w    io.Writer
	t    *tracker
	mu   sync.Mutex
	last map[string]time.Time
}

func newLineProgress(w io.Writer, now func() time.Time) *lineProgress {
	return &lineProgress{w: w, t: newTracker(now), last: map[string]time.Time{}}
}

// Start implements engine.Progress.
func (l *lineProgress) Start(stream string) {
	l.t.start(stream)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[stream] = l.t.now()
	fmt.Fprintf(l.w, "sync %s: started\n", stream)
}

// Rows implements engine.Progress.
func (l *lineProgress) Rows(stream string, rows, _ int) {
	l.t.setRows(stream, rows)
	// A sliced backfill prints when its coverage moves, so the line's
	// share and time left are never older than its count.
	if !l.t.status(stream).ranged {
		l.maybePrint(stream)
	}
}

// Covered implements engine.RangeProgress.
func (l *lineProgress) Covered(stream string, share float64) {
	l.t.cover(stream, share)
	l.maybePrint(stream)
}

// maybePrint prints the stream's progress if it has not for a while.
func (l *lineProgress) maybePrint(stream string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.t.now()
	if last, ok := l.last[stream]; ok && now.Sub(last) < lineProgressEvery {
		return
	}
	l.last[stream] = now
	fmt.Fprintf(l.w, "sync %s: %s\n", stream, l.t.status(stream).describe())
}

// Done implements engine.Progress.
func (l *lineProgress) Done(stream string, err error) {
	if !l.t.finish(stream, err) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "sync %s: %s\n", stream, l.t.status(stream).describe())
}

// Wait implements syncProgress; lines need no cleanup.
func (l *lineProgress) Wait() {}
