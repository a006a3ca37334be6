package server

import (
	"net/http"

	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// GET /api/v1/pipelines/{name}/accounts
func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	accts, err := s.svc.Accounts(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if accts == nil {
		accts = []*pipeline.AccountStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": accts})
}

// applyAccounts sets a fleet's accounts and platform cap when given.
func (in *connectionInput) applyAccounts(c *pipeline.Connection) error {
	if in.Accounts != nil {
		sel, err := fleet.ParseSelection(*in.Accounts)
		if err != nil {
			return badRequest("connection.accounts", "connection.accounts: "+err.Error())
		}
		c.Accounts.Select = sel
	}
	set(&c.Accounts.PlatformRPS, in.PlatformRPS)
	return nil
}
