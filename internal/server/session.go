package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// sessionCookie names the UI's session cookie.
const sessionCookie = "stripeline_session"

// Session lifetimes: a session lasts a working day unless used, and never
// more than a week.
const (
	sessionIdle = 12 * time.Hour
	sessionMax  = 7 * 24 * time.Hour
	// maxSessions bounds the sessions kept in memory; the oldest goes first.
	maxSessions = 1000
)

// session is one logged-in browser. It remembers the hash of the token it
// logged in with, so rotating the token ends it.
type session struct {
	csrf      string
	tokenHash string
	created   time.Time
	lastSeen  time.Time
}

// sessions are kept in memory, keyed by the SHA-256 of the cookie value (so
// a memory dump holds no usable cookie); a restart logs everyone out.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a session: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func cookieKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// create opens a session for tokenHash and returns its cookie value.
func (s *sessions) create(tokenHash string) (cookie string, sess *session, err error) {
	cookie, err = randomString()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomString()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	sess = &session{csrf: csrf, tokenHash: tokenHash, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if len(s.m) >= maxSessions {
		s.evictOldest()
	}
	s.m[cookieKey(cookie)] = sess
	return cookie, sess, nil
}

// get returns the live session of a cookie value, or nil.
func (s *sessions) get(cookie string) *session {
	if cookie == "" {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := cookieKey(cookie)
	sess := s.m[k]
	if sess == nil {
		return nil
	}
	if now.Sub(sess.lastSeen) > sessionIdle || now.Sub(sess.created) > sessionMax {
		delete(s.m, k)
		return nil
	}
	sess.lastSeen = now
	return sess
}

// end forgets the session of a cookie value.
func (s *sessions) end(cookie string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, cookieKey(cookie))
}

func (s *sessions) expire(now time.Time) {
	for k, sess := range s.m {
		if now.Sub(sess.lastSeen) > sessionIdle || now.Sub(sess.created) > sessionMax {
			delete(s.m, k)
		}
	}
}

func (s *sessions) evictOldest() {
	var oldest string
	var at time.Time
	for k, sess := range s.m {
		if oldest == "" || sess.lastSeen.Before(at) {
			oldest, at = k, sess.lastSeen
		}
	}
	delete(s.m, oldest)
}

// csrfOK compares a presented CSRF token with the session's.
func (sess *session) csrfOK(presented string) bool {
	return presented != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(sess.csrf)) == 1
}

// setSessionCookie gives the browser its session: HttpOnly (no script
// reads it), SameSite=Strict (no other site's page sends it), Secure when
// the request came over TLS.
func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
