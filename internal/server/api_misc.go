package server

import (
	"net/http"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// streamView is a stream as the pickers need it.
type streamView struct {
	Name        string           `json:"name"`
	Path        string           `json:"path"`
	Parent      string           `json:"parent,omitempty"`
	Incremental string           `json:"incremental"`
	Deletable   bool             `json:"deletable"`
	Default     bool             `json:"default"`
	Columns     []catalog.Column `json:"columns"`
}

// GET /api/v1/streams
func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) {
	defaults := map[string]bool{}
	for _, st := range catalog.Defaults() {
		defaults[st.Name] = true
	}
	all := catalog.All()
	out := make([]streamView, len(all))
	for i, st := range all {
		out[i] = streamView{Name: st.Name, Path: st.Path, Parent: st.Parent, Incremental: st.Incremental,
			Deletable: st.Deletable, Default: defaults[st.Name], Columns: st.Columns}
	}
	writeJSON(w, http.StatusOK, map[string]any{"spec_version": catalog.SpecVersion(), "streams": out})
}

// connectionTest is the body of POST /api/v1/connections/test: a
// connection to try, or a saved pipeline's (its stored key included) with
// the changes given.
type connectionTest struct {
	Pipeline   string           `json:"pipeline"`
	Connection *connectionInput `json:"connection"`
}

// POST /api/v1/connections/test
func (s *Server) testConnection(w http.ResponseWriter, r *http.Request) {
	var in connectionTest
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var conn pipeline.Connection
	if in.Pipeline != "" {
		p, err := s.svc.Get(r.Context(), in.Pipeline)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		conn = p.Connection
	}
	if in.Connection != nil {
		in.Connection.apply(&conn)
	}
	rep, err := s.svc.CheckConnection(r.Context(), in.Pipeline, conn)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
