package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// maxPage bounds the runs and log lines of one page.
const (
	maxRunsPage = 200
	maxLogsPage = 1000
)

// POST /api/v1/pipelines/{name}/runs
func (s *Server) runPipeline(w http.ResponseWriter, r *http.Request) {
	run, err := s.svc.Run(r.Context(), r.PathValue("name"), pipeline.TriggerAPI)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/runs/%d", run.ID))
	writeJSON(w, http.StatusAccepted, run)
}

// GET /api/v1/pipelines/{name}/runs?limit=N&before=ID
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	limit, err := intParam(r, "limit", 20, 1, maxRunsPage)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	before, err := intParam(r, "before", 0, 0, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.svc.Get(r.Context(), name); err != nil {
		s.writeError(w, r, err)
		return
	}
	runs, err := s.svc.Runs(r.Context(), pipeline.RunFilter{Pipeline: name, Before: before, Limit: int(limit)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body := map[string]any{"runs": nonNil(runs)}
	if len(runs) == int(limit) {
		body["next_before"] = runs[len(runs)-1].ID
	}
	writeJSON(w, http.StatusOK, body)
}

// GET /api/v1/runs/{id}
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err := s.svc.GetRun(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, runView{Run: run, Progress: s.svc.Progress(id)})
}

// runView is a run as GET /api/v1/runs/{id} shows it: with the live
// progress of its streams while this server works it.
type runView struct {
	*pipeline.Run
	Progress []pipeline.StreamProgress `json:"progress,omitempty"`
}

// GET /api/v1/runs/{id}/logs?after=SEQ&limit=N[&follow=1]
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after, err := intParam(r, "after", 0, 0, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" { // an EventSource reconnecting
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > after {
			after = n
		}
	}
	switch f := r.URL.Query().Get("follow"); f {
	case "", "0", "false":
	case "1", "true":
		s.followLogs(w, r, id, after)
		return
	default:
		s.writeError(w, r, badRequest("follow", "follow: "+quote(f)+" is not 1 or 0"))
		return
	}
	limit, err := intParam(r, "limit", 500, 1, maxLogsPage)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lines, err := s.svc.Logs(r.Context(), id, after, int(limit))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body := map[string]any{"lines": nonNil(lines)}
	if len(lines) == int(limit) {
		body["next_after"] = lines[len(lines)-1].Seq
	}
	writeJSON(w, http.StatusOK, body)
}

// followLogs streams a run's log as it is written, until the run ends:
// Server-Sent Events (event "line" per line, then "end" with the run), or
// NDJSON lines when the client asks for application/x-ndjson.
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, id, after int64) {
	ctx, cancel := mergeDone(r.Context(), s.streams)
	defer cancel()
	lines, err := s.svc.Follow(ctx, id, after)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ndjson := strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
	if ndjson {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for l := range lines {
		b, _ := json.Marshal(l)
		if ndjson {
			_, err = fmt.Fprintf(w, "%s\n", b)
		} else {
			_, err = fmt.Fprintf(w, "id: %d\nevent: line\ndata: %s\n\n", l.Seq, b)
		}
		if err != nil {
			return
		}
		_ = rc.Flush()
	}
	if ctx.Err() != nil {
		return // the client left, or the server is shutting down
	}
	run, err := s.svc.GetRun(r.Context(), id)
	if err != nil {
		return
	}
	b, _ := json.Marshal(run)
	if ndjson {
		fmt.Fprintf(w, "{\"end\":%s}\n", b)
	} else {
		fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	}
	_ = rc.Flush()
}

func runID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("id", "id: "+quote(v)+" is not a run id (a positive number, as GET /api/v1/pipelines/{name}/runs lists them)")
	}
	return id, nil
}

// intParam reads an integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name, fmt.Sprintf("%s: %q is not a number from %d to %d", name, v, lo, hi))
	}
	return n, nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func quote(s string) string { return strconv.Quote(s) }
