package server

import (
	"net/http"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// pipelineView is a pipeline as the API shows it: the destination URL and
// the proxy with their passwords hidden, the key as its hint only.
type pipelineView struct {
	pipeline.Pipeline
	Dest string `json:"dest"`
}

func viewOf(p *pipeline.Pipeline) pipelineView {
	v := pipelineView{Pipeline: *p, Dest: p.RedactedDest()}
	v.Connection.APIKey = ""
	v.Connection.Proxy = dest.Redact(p.Connection.Proxy)
	return v
}

func viewsOf(ps []*pipeline.Pipeline) []pipelineView {
	out := make([]pipelineView, len(ps))
	for i, p := range ps {
		out[i] = viewOf(p)
	}
	return out
}

// GET /api/v1/pipelines
func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": viewsOf(ps)})
}

// POST /api/v1/pipelines
func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request) {
	var in pipelineInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var p pipeline.Pipeline
	if in.Name != nil {
		p.Name = *in.Name
	}
	if err := in.apply(&p); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.svc.Create(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/pipelines/"+created.Name)
	writeJSON(w, http.StatusCreated, viewOf(created))
}

// GET /api/v1/pipelines/{name}
func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(p))
}

// PATCH /api/v1/pipelines/{name}
func (s *Server) patchPipeline(w http.ResponseWriter, r *http.Request) {
	var in pipelineInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if in.Name != nil && *in.Name != name {
		s.writeError(w, r, badRequest("name", "name: a pipeline's name never changes (it names its state and tables): create a new pipeline instead"))
		return
	}
	p, err := s.svc.Get(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := in.apply(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	updated, err := s.svc.Update(r.Context(), *p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(updated))
}

// DELETE /api/v1/pipelines/{name}?tables=keep|drop
func (s *Server) deletePipeline(w http.ResponseWriter, r *http.Request) {
	drop, err := tablesChoice(r.URL.Query().Get("tables"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	res, err := s.svc.Delete(r.Context(), name, pipeline.DeleteOptions{DropTables: drop})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.Forget(name)
	writeJSON(w, http.StatusOK, res)
}

// tablesChoice reads the delete's tables=keep|drop, which has no default:
// dropping a replica is never a surprise.
func tablesChoice(v string) (drop bool, err error) {
	switch v {
	case "keep":
		return false, nil
	case "drop":
		return true, nil
	case "":
		return false, badRequest("tables", "tables: say what becomes of the pipeline's replica tables: ?tables=keep, or ?tables=drop to drop them with its state and history")
	}
	return false, badRequest("tables", "tables: "+quote(v)+" is neither keep nor drop")
}

// POST /api/v1/pipelines/{name}/pause
func (s *Server) pausePipeline(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Pause(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(p))
}

// POST /api/v1/pipelines/{name}/resume
func (s *Server) resumePipeline(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Resume(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(p))
}
