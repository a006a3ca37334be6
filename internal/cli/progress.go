package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// barProgress draws one mpb bar per stream on a terminal.
type barProgress struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[string]*mpb.Bar
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(150*time.Millisecond)), bars: map[string]*mpb.Bar{}}
}

func (b *barProgress) bar(stream string) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	bar := b.bars[stream]
	if bar == nil {
		// The total is unknown until the stream ends: a spinner-style bar
		// with a running count.
		bar = b.p.New(0, mpb.SpinnerStyle(),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-32s", stream))),
			mpb.AppendDecorators(decor.CurrentNoUnit("%d rows"), decor.Name("  "), decor.AverageSpeed(0, "%.0f rows/s")),
			mpb.BarFillerClearOnComplete())
		b.bars[stream] = bar
	}
	return bar
}

func (b *barProgress) Start(stream string) { b.bar(stream) }

func (b *barProgress) Rows(stream string, rows, _ int) {
	bar := b.bar(stream)
	if d := int64(rows) - bar.Current(); d > 0 {
		bar.IncrInt64(d)
	}
}

func (b *barProgress) Done(stream string, _ error) {
	bar := b.bar(stream)
	bar.SetTotal(bar.Current(), true)
}

func (b *barProgress) Wait() {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

// lineProgress prints plain lines when stderr is not a terminal: one when a
// stream starts and ends, and at most one every few seconds per stream.
type lineProgress struct {
	w    io.Writer
	mu   sync.Mutex
	last map[string]time.Time
}

func newLineProgress(w io.Writer) *lineProgress {
	return &lineProgress{w: w, last: map[string]time.Time{}}
}

func (l *lineProgress) Start(stream string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[stream] = time.Now()
	fmt.Fprintf(l.w, "sync %s: started\n", stream)
}

func (l *lineProgress) Rows(stream string, rows, pages int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last[stream]) < 5*time.Second {
		return
	}
	l.last[stream] = time.Now()
	fmt.Fprintf(l.w, "sync %s: %d rows\n", stream, rows)
}

func (l *lineProgress) Done(stream string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		fmt.Fprintf(l.w, "sync %s: failed\n", stream)
		return
	}
	fmt.Fprintf(l.w, "sync %s: done\n", stream)
}

func (l *lineProgress) Wait() {}
