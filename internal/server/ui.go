package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// The UI ships inside the binary: server-rendered templates and one
// stylesheet and script of our own, nothing fetched from elsewhere.
//
//go:embed ui/templates/*.html ui/static/*
var uiFS embed.FS

// pageNames are the templates under ui/templates that are whole pages; each
// is parsed with layout.html and partials.html.
var pageNames = []string{"login", "error", "list", "form", "pipeline", "run"}

// page is what every template gets: the layout's needs and the page's Data.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Version string
	Store   string
	Data    any
}

// parseTemplates parses every page with the layout and the partials.
func (s *Server) parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(s.templateFuncs()).ParseFS(uiFS, "ui/templates/layout.html", "ui/templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse the UI's layout: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(uiFS, "ui/templates/"+name+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("parse the UI's %s page: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func (s *Server) templateFuncs() template.FuncMap {
	return template.FuncMap{
		"when":     s.when,
		"duration": s.runDuration,
		"count":    func(n any) string { return groupDigits(toInt64(n)) },
		"attrs":    attrText,
	}
}

// staticHandler serves ui/static.
func staticHandler() http.Handler {
	sub, err := fs.Sub(uiFS, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// render writes a whole page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	s.renderTemplate(w, r, status, name, "layout", s.pageOf(r, title, nav, data))
}

// renderFragment writes one named template of a page (a live part).
func (s *Server) renderFragment(w http.ResponseWriter, r *http.Request, pageName, tmpl string, data any) {
	s.renderTemplate(w, r, http.StatusOK, pageName, tmpl, s.pageOf(r, "", "", data))
}

func (s *Server) pageOf(r *http.Request, title, nav string, data any) page {
	p := page{Title: title, Nav: nav, Version: s.opts.Version, Store: s.store, Data: data}
	if sess := sessionFrom(r.Context()); sess != nil {
		p.CSRF = sess.csrf
	}
	return p
}

func (s *Server) renderTemplate(w http.ResponseWriter, r *http.Request, status int, pageName, tmpl string, p page) {
	var buf bytes.Buffer
	if err := s.pages[pageName].ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.log.Error("render a page", "request_id", requestID(r.Context()), "page", pageName, "error", err)
		http.Error(w, "the page could not be drawn (request "+requestID(r.Context())+"): the server's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderStatus writes the error page.
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	s.render(w, r, status, "error", heading, "", map[string]string{"Heading": heading, "Message": msg})
}

// renderError writes the error page for err, as classify maps it.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.shown(r, err)
	heading := http.StatusText(ae.Status)
	if ae.Status == http.StatusNotFound {
		heading = "Not found"
	}
	s.renderStatus(w, r, ae.Status, heading, ae.Message)
}

// when renders a time as "3 min ago" (or "in 5 min"), the exact time in
// its tooltip; a zero time is a dash.
func (s *Server) when(t time.Time) template.HTML {
	if t.IsZero() {
		return `<span class="muted">—</span>`
	}
	d := s.now().Sub(t)
	rel := ago(d)
	exact := t.UTC().Format("2006-01-02 15:04:05 UTC")
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.UTC().Format(time.RFC3339), exact, template.HTMLEscapeString(rel)))
}

func ago(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		if future {
			return "in a moment"
		}
		return "just now"
	case d < 90*time.Minute:
		s = fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	case d < 36*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Round(time.Hour)/time.Hour))
	default:
		s = fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// runDuration is how long a run took (or has taken so far).
func (s *Server) runDuration(r *pipeline.Run) string {
	d := r.Duration(s.now())
	if d <= 0 {
		return "—"
	}
	return shortDuration(d)
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func toInt64(n any) int64 {
	switch v := n.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

// attrText prints a log line's attributes as key=value, sorted by key.
func attrText(attrs map[string]any) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, attrs[k])
	}
	return b.String()
}
