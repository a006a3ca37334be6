package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

type ctxKey int

const sessionKey ctxKey = iota

func withSession(ctx context.Context, sess *session) context.Context {
	return context.WithValue(ctx, sessionKey, sess)
}

// sessionFrom returns the request's UI session, or nil (a bearer client).
func sessionFrom(ctx context.Context) *session {
	sess, _ := ctx.Value(sessionKey).(*session)
	return sess
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// sessionOf returns the request's live session, if its cookie names one
// opened with the current token.
func (s *Server) sessionOf(r *http.Request, tokenHash string) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	sess := s.sessions.get(c.Value)
	if sess == nil {
		return nil
	}
	if sess.tokenHash != tokenHash { // the token was rotated since
		s.sessions.end(c.Value)
		return nil
	}
	return sess
}

// Authentication failures as the API reports them.
var (
	errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "this API needs the server's token: send Authorization: Bearer stl_… (stripeline serve prints the token at its first start; stripeline serve token makes a new one)"}
	errBadToken = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "the token is not the server's token (it may have been rotated): use the one stripeline serve token printed last"}
	errCSRF = &apiError{Status: http.StatusForbidden, Code: "csrf", Field: "X-CSRF-Token",
		Message: "a request from the UI must carry the page's CSRF token in the X-CSRF-Token header: reload the page and try again"}
)

// requireAPI lets a request through with the server's bearer token, or
// with a UI session (and, for a request that changes state, the session's
// CSRF token in X-CSRF-Token).
func (s *Server) requireAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash, err := s.tokens.TokenHash(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if tok, ok := bearer(r); ok {
			if !tokenMatches(tok, hash) {
				s.writeError(w, r, errBadToken)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		sess := s.sessionOf(r, hash)
		if sess == nil {
			s.writeError(w, r, errUnauthorized)
			return
		}
		if !safeMethod(r.Method) && !sess.csrfOK(r.Header.Get("X-CSRF-Token")) {
			s.writeError(w, r, errCSRF)
			return
		}
		next.ServeHTTP(w, r.WithContext(withSession(r.Context(), sess)))
	})
}

// requireUI lets a request through with a UI session; a form that changes
// state must carry the session's CSRF token (field _csrf). Without a
// session, the browser is sent to the login page.
func (s *Server) requireUI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash, err := s.tokens.TokenHash(r.Context())
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		sess := s.sessionOf(r, hash)
		if sess == nil {
			if !safeMethod(r.Method) {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if err := r.ParseForm(); err != nil || !sess.csrfOK(r.PostForm.Get("_csrf")) {
				s.renderStatus(w, r, http.StatusForbidden, "This form has expired", "The page was open too long or came from elsewhere. Reload it and try again.")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(withSession(r.Context(), sess)))
	})
}

// localPath returns next when it is a path on this server, else "/": the
// login page never redirects elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
