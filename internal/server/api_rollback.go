package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// POST /api/v1/runs/{id}/rollback?dry_run=true
func (s *Server) rollbackRun(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dry := false
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "false", "0":
	case "true", "1":
		dry = true
	default:
		s.writeError(w, r, &apiError{Status: http.StatusBadRequest, Code: "invalid", Field: "dry_run", Message: fmt.Sprintf("dry_run %q is not a boolean: use true or false", v)})
		return
	}
	res, err := s.svc.Rollback(r.Context(), id, dry)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// POST /runs/{id}/rollback (form: dry_run=1 previews)
func (s *Server) rollbackFromForm(w http.ResponseWriter, r *http.Request) {
	d, err := s.runData(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	dry := r.PostFormValue("dry_run") == "1"
	res, err := s.svc.Rollback(r.Context(), d.Run.ID, dry)
	status := http.StatusOK
	if err != nil {
		ae, ok := classify(err)
		if !ok {
			s.renderError(w, r, err)
			return
		}
		d.Flash, status = ae.Message, ae.Status
	} else if !dry {
		// The page shows the run's new status.
		if d, err = s.runData(r); err != nil {
			s.renderError(w, r, err)
			return
		}
	}
	d.Rollback = res
	if lines, err := s.svc.Logs(r.Context(), d.Run.ID, 0, runPageLines); err == nil {
		d.Lines, d.More = lines, len(lines) == runPageLines
	}
	s.render(w, r, status, "run", fmt.Sprintf("Run %d", d.Run.ID), "pipelines", d)
}

// classifyHistory maps rollback's errors; nil for others.
func classifyHistory(err error) *apiError {
	var locked *dest.LockedError
	switch {
	case errors.As(err, &locked):
		return &apiError{Status: http.StatusConflict, Code: "busy", Message: locked.Situation() + "; roll back once it has finished"}
	case errors.Is(err, pipeline.ErrNoReplicaRun):
		return &apiError{Status: http.StatusConflict, Code: "no_replica_run", Message: err.Error()}
	case errors.Is(err, history.ErrNoHistory):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "no_history", Message: err.Error()}
	case errors.Is(err, history.ErrNoRun):
		return &apiError{Status: http.StatusConflict, Code: "not_in_replica", Message: err.Error()}
	case errors.Is(err, history.ErrPruned):
		return &apiError{Status: http.StatusConflict, Code: "pruned", Message: err.Error()}
	}
	return nil
}
