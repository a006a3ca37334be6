package server

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// formView fills the create/edit form: from a pipeline, or from what was
// submitted when it must be shown again with an error.
type formView struct {
	Editing bool
	Error   *apiError
	// FromConfig is set for a pipeline the config file declares.
	FromConfig bool

	Name, DisplayName, Description string
	// KeyMode is "env" or "stored".
	KeyMode, KeyEnv, KeyHint string
	Account, APIBase, Proxy  string
	Dest                     string
	Streams                  []streamChoice
	// ScheduleKind is manual, every or cron.
	ScheduleKind, Every, Cron string

	StartDate, LookbackDays, WindowDays, MaxRPS, EndpointRPS, Concurrency string
	// TwoWay is one "stream: field, field" line per stream (ui_twoway.go).
	TwoWay, TwoWayConflicts string
}

// Bad reports whether the form's error is about field.
func (f *formView) Bad(field string) bool { return f.Error != nil && f.Error.Field == field }

// streamChoice is one stream of the picker. Fields are listed (server
// side) only for a stream whose fields were picked; the script lists the
// others' when asked.
type streamChoice struct {
	Name    string
	Checked bool
	Default bool
	Fields  []fieldChoice
	Picked  int
}

type fieldChoice struct {
	Stream, Name string
	Checked      bool
}

// streamChoices is the catalog with the selection ticked.
func streamChoices(selected []string, fields map[string][]string) []streamChoice {
	defaults := map[string]bool{}
	for _, s := range catalog.Defaults() {
		defaults[s.Name] = true
	}
	var out []streamChoice
	for _, st := range catalog.All() {
		c := streamChoice{Name: st.Name, Checked: slices.Contains(selected, st.Name), Default: defaults[st.Name]}
		if picked := fields[st.Name]; len(picked) > 0 {
			for _, col := range st.Columns {
				on := slices.Contains(picked, col.Name)
				c.Fields = append(c.Fields, fieldChoice{Stream: st.Name, Name: col.Name, Checked: on})
				if on {
					c.Picked++
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func numText[T int | float64](v T) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// formOf fills the form from a pipeline (the edit page).
func formOf(p *pipeline.Pipeline) *formView {
	f := &formView{
		Editing: true, FromConfig: p.Source == "config", Name: p.Name, DisplayName: p.DisplayName, Description: p.Description,
		KeyMode: "stored", KeyHint: p.Connection.KeyHint,
		Account: p.Connection.Account, APIBase: p.Connection.APIBase, Proxy: dest.Redact(p.Connection.Proxy),
		Dest: p.RedactedDest(), Streams: streamChoices(p.Streams, p.Fields),
		LookbackDays: numText(p.LookbackDays), WindowDays: numText(p.WindowDays),
		MaxRPS: numText(p.MaxRPS), EndpointRPS: numText(p.EndpointRPS), Concurrency: numText(p.Concurrency),
	}
	f.TwoWay, f.TwoWayConflicts = twoWayText(p.TwoWay)
	if env, ok := strings.CutPrefix(p.Connection.KeyRef, "env:"); ok {
		f.KeyMode, f.KeyEnv = "env", env
	}
	if !p.StartDate.IsZero() {
		f.StartDate = p.StartDate.UTC().Format("2006-01-02")
	}
	switch {
	case p.Schedule.Every != 0:
		f.ScheduleKind, f.Every = "every", strings.TrimPrefix(p.Schedule.String(), "every ")
	case p.Schedule.Cron != "":
		f.ScheduleKind, f.Cron = "cron", p.Schedule.Cron
	default:
		f.ScheduleKind = "manual"
	}
	return f
}

// newForm is the empty create form.
func newForm() *formView {
	return &formView{KeyMode: "env", KeyEnv: "STRIPE_API_KEY", ScheduleKind: "every", Every: "1h", Streams: streamChoices(nil, nil)}
}

// formValues re-fills the form from what was submitted.
func formValues(v url.Values, editing bool, keyHint string) *formView {
	fields := formFields(v)
	return &formView{
		Editing: editing, Name: v.Get("name"), DisplayName: v.Get("display_name"), Description: v.Get("description"),
		KeyMode: v.Get("key_mode"), KeyEnv: v.Get("key_env"), KeyHint: keyHint,
		Account: v.Get("account"), APIBase: v.Get("api_base"), Proxy: v.Get("proxy"), Dest: v.Get("dest"),
		Streams:      streamChoices(v["streams"], fields),
		ScheduleKind: v.Get("schedule_kind"), Every: v.Get("every"), Cron: v.Get("cron"),
		StartDate: v.Get("start_date"), LookbackDays: v.Get("lookback_days"), WindowDays: v.Get("window_days"),
		MaxRPS: v.Get("max_rps"), EndpointRPS: v.Get("endpoint_rps"), Concurrency: v.Get("concurrency"),
		TwoWay: v.Get("two_way"), TwoWayConflicts: v.Get("two_way_conflicts"),
	}
}

// formFields collects the fields.STREAM checkboxes.
func formFields(v url.Values) map[string][]string {
	out := map[string][]string{}
	for k, vals := range v {
		if s, ok := strings.CutPrefix(k, "fields."); ok && len(vals) > 0 {
			out[s] = vals
		}
	}
	return out
}

// inputOfForm turns a submitted form into the API's input, so the form and
// the API share one path into the pipeline package. old is the pipeline
// being edited (nil when creating): a destination or proxy left masked
// keeps its stored password, an empty key field keeps the stored key.
func inputOfForm(v url.Values, old *pipeline.Pipeline) (*pipelineInput, error) {
	in := &pipelineInput{}
	str := func(name string) *string { s := strings.TrimSpace(v.Get(name)); return &s }
	if old == nil {
		in.Name = str("name")
	}
	in.DisplayName, in.Description = str("display_name"), str("description")
	in.Dest = str("dest")
	conn := &connectionInput{Account: str("account"), APIBase: str("api_base"), Proxy: str("proxy")}
	if old != nil {
		if *in.Dest == old.RedactedDest() {
			in.Dest = nil
		}
		if *conn.Proxy == dest.Redact(old.Connection.Proxy) {
			conn.Proxy = nil
		}
	}
	switch v.Get("key_mode") {
	case "env":
		ref := "env:" + strings.TrimSpace(v.Get("key_env"))
		conn.KeyRef = &ref
	default:
		if k := strings.TrimSpace(v.Get("api_key")); k != "" {
			conn.APIKey = &k
		} else {
			ref := pipeline.KeyRefStored
			conn.KeyRef = &ref
		}
	}
	in.Connection = conn
	streams := v["streams"]
	fields := formFields(v)
	in.Streams, in.Fields = &streams, &fields
	sched := "manual"
	switch v.Get("schedule_kind") {
	case "every":
		sched = "every " + strings.TrimSpace(v.Get("every"))
	case "cron":
		sched = "cron " + strings.TrimSpace(v.Get("cron"))
	}
	in.Schedule = &sched
	in.StartDate = str("start_date")
	var err error
	if in.LookbackDays, err = formInt(v, "lookback_days"); err != nil {
		return nil, err
	}
	if in.WindowDays, err = formInt(v, "window_days"); err != nil {
		return nil, err
	}
	if in.Concurrency, err = formInt(v, "concurrency"); err != nil {
		return nil, err
	}
	if in.MaxRPS, err = formFloat(v, "max_rps"); err != nil {
		return nil, err
	}
	if in.EndpointRPS, err = formFloat(v, "endpoint_rps"); err != nil {
		return nil, err
	}
	if in.TwoWay, err = formTwoWay(v); err != nil {
		return nil, err
	}
	return in, nil
}

func formInt(v url.Values, name string) (*int, error) {
	s := strings.TrimSpace(v.Get(name))
	n := 0
	if s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			return nil, badRequest(name, fmt.Sprintf("%s: %q is not a whole number", name, s))
		}
	}
	return &n, nil
}

func formFloat(v url.Values, name string) (*float64, error) {
	s := strings.TrimSpace(v.Get(name))
	n := 0.0
	if s != "" {
		var err error
		if n, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, badRequest(name, fmt.Sprintf("%s: %q is not a number", name, s))
		}
	}
	return &n, nil
}
