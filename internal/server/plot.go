package server

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// Plot geometry, in SVG user units (the SVG scales to its box).
const (
	plotW, plotH                           = 960, 220
	plotLeft, plotRight, plotTop, plotBase = 64, 16, 14, 30
	plotMaxRuns                            = 40
)

// rowsPlot draws the rows each run wrote, oldest on the left, as an inline
// SVG bar chart: bars coloured by status, a tooltip per bar, a y axis with
// round ticks and the first, middle and last run's date below.
func rowsPlot(runs []*pipeline.Run) template.HTML {
	var done []*pipeline.Run
	for i := len(runs) - 1; i >= 0; i-- { // runs come newest first
		if !runs[i].Started.IsZero() && runs[i].Status.Finished() {
			done = append(done, runs[i])
		}
	}
	if len(done) > plotMaxRuns {
		done = done[len(done)-plotMaxRuns:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" role="img" aria-label="Rows written per run">`, plotW, plotH)
	if len(done) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">No finished runs yet: the rows of each run appear here.</text></svg>`, plotW/2, plotH/2)
		return template.HTML(b.String())
	}
	var top int64
	for _, r := range done {
		top = max(top, r.Rows)
	}
	ymax, step := niceScale(top)
	innerW := float64(plotW - plotLeft - plotRight)
	innerH := float64(plotH - plotTop - plotBase)
	y := func(v float64) float64 { return float64(plotTop) + innerH - v/ymax*innerH }
	b.WriteString(`<g class="grid">`)
	for v := 0.0; v <= ymax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, plotLeft, plotW-plotRight, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, plotLeft-8, y(v), shortCount(v))
	}
	b.WriteString(`</g>`)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, plotLeft, plotW-plotRight, y(0), y(0))
	slot := innerW / float64(len(done))
	barW := math.Min(34, slot*0.7)
	for i, r := range done {
		x := float64(plotLeft) + slot*float64(i) + (slot-barW)/2
		h := math.Max(float64(r.Rows)/ymax*innerH, 1)
		class := "bar-other"
		switch r.Status {
		case pipeline.RunSucceeded:
			class = "bar-succeeded"
		case pipeline.RunFailed:
			class = "bar-failed"
		}
		tip := fmt.Sprintf("Run #%d · %s rows · %s · %s", r.ID, groupDigits(r.Rows), r.Status, r.Started.UTC().Format("2006-01-02 15:04"))
		fmt.Fprintf(&b, `<a href="/runs/%d"><rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2"><title>%s</title></rect></a>`,
			r.ID, class, x, y(0)-h, barW, h, html.EscapeString(tip))
	}
	for _, i := range labelIndexes(len(done)) {
		x := float64(plotLeft) + slot*float64(i) + slot/2
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, plotH-10, html.EscapeString(shortDate(done[i].Started)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceScale returns an axis maximum at or above top and a round tick step
// (1, 2 or 5 times a power of ten), about four ticks.
func niceScale(top int64) (ymax, step float64) {
	if top <= 0 {
		return 4, 1
	}
	raw := float64(top) / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	step = math.Max(step, 1)
	return math.Ceil(float64(top)/step) * step, step
}

// labelIndexes are the runs whose dates label the x axis.
func labelIndexes(n int) []int {
	switch {
	case n == 1:
		return []int{0}
	case n == 2:
		return []int{0, 1}
	}
	return []int{0, n / 2, n - 1}
}

func shortDate(t time.Time) string { return t.UTC().Format("Jan 2 15:04") }

// shortCount prints 1.5k, 20k, 3M.
func shortCount(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// groupDigits prints 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
