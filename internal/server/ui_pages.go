package server

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// listData fills the pipelines list.
type listData struct {
	Pipelines []*pipeline.Pipeline
	// Active is set while a pipeline runs, so the list refreshes itself.
	Active bool
	Flash  string
}

func (s *Server) listData(r *http.Request) (*listData, error) {
	ps, err := s.svc.List(r.Context())
	if err != nil {
		return nil, err
	}
	d := &listData{Pipelines: ps}
	for _, p := range ps {
		if p.Status.State == pipeline.StateRunning {
			d.Active = true
		}
	}
	return d, nil
}

// GET /{$}
func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.listData(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "list", "Pipelines", "pipelines", d)
}

// GET /pipelines-live
func (s *Server) listLive(w http.ResponseWriter, r *http.Request) {
	d, err := s.listData(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.renderFragment(w, r, "list", "pipelines", d)
}

// pipelineData fills the pipeline page.
type pipelineData struct {
	P        *pipeline.Pipeline
	Dest     string
	Proxy    string
	Runs     []*pipeline.Run
	Current  *pipeline.Run
	Progress []pipeline.StreamProgress
	// LastStreams are the tables of the newest run that read any, with
	// what that run wrote to each.
	LastStreams []*engine.StreamResult
	LastRun     *pipeline.Run
	Plot        template.HTML
	Active      bool
	Flash       string
	// Accounts are a fleet pipeline's accounts (api_accounts.go).
	Accounts []*pipeline.AccountStatus
}

func (s *Server) pipelineData(r *http.Request, name string) (*pipelineData, error) {
	p, err := s.svc.Get(r.Context(), name)
	if err != nil {
		return nil, err
	}
	runs, err := s.svc.Runs(r.Context(), pipeline.RunFilter{Pipeline: name, Limit: plotMaxRuns})
	if err != nil {
		return nil, err
	}
	d := &pipelineData{P: p, Dest: p.RedactedDest(), Proxy: dest.Redact(p.Connection.Proxy), Plot: rowsPlot(runs)}
	if len(runs) > 0 && !runs[0].Status.Finished() {
		d.Current, d.Active = runs[0], true
		d.Progress = s.svc.Progress(runs[0].ID)
	}
	for _, r := range runs {
		if r.Status.Finished() && len(r.Streams) > 0 {
			d.LastStreams, d.LastRun = r.Streams, r
			break
		}
	}
	if len(runs) > 15 {
		runs = runs[:15]
	}
	d.Runs = runs
	if p.Fleet() {
		if d.Accounts, err = s.svc.Accounts(r.Context(), name); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// GET /pipelines/{name}
func (s *Server) pipelinePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.pipelineData(r, r.PathValue("name"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "pipeline", d.P.Title(), "pipelines", d)
}

// GET /pipelines/{name}/live
func (s *Server) pipelineLive(w http.ResponseWriter, r *http.Request) {
	d, err := s.pipelineData(r, r.PathValue("name"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.renderFragment(w, r, "pipeline", "pipeline-live", d)
}

// GET /new
func (s *Server) newPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "form", "New pipeline", "new", newForm())
}

// POST /new
func (s *Server) createFromForm(w http.ResponseWriter, r *http.Request) {
	in, err := inputOfForm(r.PostForm, nil)
	var created *pipeline.Pipeline
	if err == nil {
		var p pipeline.Pipeline
		p.Name = *in.Name
		if err = in.apply(&p); err == nil {
			created, err = s.svc.Create(r.Context(), p)
		}
	}
	if err != nil {
		s.formError(w, r, formValues(r.PostForm, false, ""), err)
		return
	}
	http.Redirect(w, r, "/pipelines/"+created.Name, http.StatusSeeOther)
}

// GET /pipelines/{name}/edit
func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "form", "Edit "+p.Name, "pipelines", formOf(p))
}

// POST /pipelines/{name}/edit
func (s *Server) updateFromForm(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	hint := p.Connection.KeyHint
	in, err := inputOfForm(r.PostForm, p)
	if err == nil {
		if err = in.apply(p); err == nil {
			_, err = s.svc.Update(r.Context(), *p)
		}
	}
	if err != nil {
		f := formValues(r.PostForm, true, hint)
		f.Name = p.Name
		s.formError(w, r, f, err)
		return
	}
	http.Redirect(w, r, "/pipelines/"+p.Name, http.StatusSeeOther)
}

// formError shows the form again with what was typed and the error.
func (s *Server) formError(w http.ResponseWriter, r *http.Request, f *formView, err error) {
	ae, ok := classify(err)
	if !ok {
		s.renderError(w, r, err)
		return
	}
	f.Error = ae
	title := "New pipeline"
	if f.Editing {
		title = "Edit " + f.Name
	}
	s.render(w, r, ae.Status, "form", title, "new", f)
}

// POST /pipelines/{name}/run
func (s *Server) runFromForm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	run, err := s.svc.Run(r.Context(), name, pipeline.TriggerAPI)
	var busy *pipeline.BusyError
	if errors.As(err, &busy) {
		http.Redirect(w, r, fmt.Sprintf("/runs/%d", busy.Run.ID), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pipelineFlash(w, r, name, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), http.StatusSeeOther)
}

// POST /pipelines/{name}/pause and /resume
func (s *Server) pauseFromForm(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var err error
		if pause {
			_, err = s.svc.Pause(r.Context(), name)
		} else {
			_, err = s.svc.Resume(r.Context(), name)
		}
		if err != nil {
			s.pipelineFlash(w, r, name, err)
			return
		}
		http.Redirect(w, r, "/pipelines/"+name, http.StatusSeeOther)
	}
}

// POST /pipelines/{name}/delete
func (s *Server) deleteFromForm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	drop, err := tablesChoice(r.PostForm.Get("tables"))
	if err == nil {
		_, err = s.svc.Delete(r.Context(), name, pipeline.DeleteOptions{DropTables: drop})
	}
	if err != nil {
		s.pipelineFlash(w, r, name, err)
		return
	}
	s.metrics.Forget(name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// pipelineFlash shows the pipeline page with an action's error on top.
func (s *Server) pipelineFlash(w http.ResponseWriter, r *http.Request, name string, err error) {
	ae, ok := classify(err)
	if !ok {
		s.renderError(w, r, err)
		return
	}
	d, derr := s.pipelineData(r, name)
	if derr != nil {
		s.renderError(w, r, err)
		return
	}
	d.Flash = ae.Message
	s.render(w, r, ae.Status, "pipeline", d.P.Title(), "pipelines", d)
}

// runData fills the run page.
type runData struct {
	Run      *pipeline.Run
	Lines    []pipeline.LogLine
	LastSeq  int64
	More     bool
	Active   bool
	Progress []pipeline.StreamProgress
	// Flash is an action's error; Rollback a rollback's (or preview's)
	// result (api_rollback.go).
	Flash    string
	Rollback *history.Result
}

// runPageLines bounds the log lines the run page draws.
const runPageLines = 1000

func (s *Server) runData(r *http.Request) (*runData, error) {
	id, err := runID(r)
	if err != nil {
		return nil, err
	}
	run, err := s.svc.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	d := &runData{Run: run, Active: !run.Status.Finished()}
	if d.Active {
		d.Progress = s.svc.Progress(id)
	}
	return d, nil
}

// GET /runs/{id}
func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.runData(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	lines, err := s.svc.Logs(r.Context(), d.Run.ID, 0, runPageLines)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	d.Lines, d.More = lines, len(lines) == runPageLines
	if len(lines) > 0 {
		d.LastSeq = lines[len(lines)-1].Seq
	}
	s.render(w, r, http.StatusOK, "run", fmt.Sprintf("Run %d", d.Run.ID), "pipelines", d)
}

// GET /runs/{id}/live
func (s *Server) runLive(w http.ResponseWriter, r *http.Request) {
	d, err := s.runData(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.renderFragment(w, r, "run", "run-live-box", d)
}
