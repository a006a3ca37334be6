package server

import (
	"net/http"
)

type loginData struct {
	Next  string
	Error string
}

// GET /login
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", "Log in", "", loginData{Next: localPath(r.URL.Query().Get("next"))})
}

// POST /login trades the token for a session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, "Bad request", "The login form could not be read.")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	hash, err := s.tokens.TokenHash(r.Context())
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if !tokenMatches(r.PostForm.Get("token"), hash) {
		s.log.Info("ui login refused: wrong token", "request_id", requestID(r.Context()))
		s.render(w, r, http.StatusUnauthorized, "login", "Log in", "", loginData{Next: next,
			Error: "That is not the server's token. Use the token stripeline serve printed (or the newest from stripeline serve token)."})
		return
	}
	cookie, _, err := s.sessions.create(hash)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	setSessionCookie(w, r, cookie, int(sessionMax.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// POST /logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.end(c.Value)
	}
	setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
