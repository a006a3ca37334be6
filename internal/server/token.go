package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// TokenStore keeps the hash of the server's access token; the control store
// implements it, so every `serve` process on one store shares the token.
// Its methods are safe for concurrent use.
type TokenStore interface {
	// TokenHash returns the stored hash, or "" when no token was made yet.
	TokenHash(ctx context.Context) (string, error)
	// SetTokenHash stores hash in place of any earlier one.
	SetTokenHash(ctx context.Context, hash string) error
}

// tokenPrefix marks stripeline server tokens, so a leaked one is
// recognisable (and never confused with a Stripe key).
const tokenPrefix = "stl_"

// newToken returns a fresh token: the prefix and 256 random bits.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashToken is what the store keeps of a token: its SHA-256. A token is
// 256 random bits, so a fast hash is enough (there is no password to
// guess); the store alone never lets anyone in.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tokenMatches compares a presented token with the stored hash in
// constant time.
func tokenMatches(token, stored string) bool {
	if token == "" || stored == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(stored)) == 1
}

// EnsureToken makes the server's token at its first start. It returns the
// new token, to be shown once, or "" when the store has one already.
func EnsureToken(ctx context.Context, ts TokenStore) (string, error) {
	h, err := ts.TokenHash(ctx)
	if err != nil {
		return "", fmt.Errorf("read the server token: %w", err)
	}
	if h != "" {
		return "", nil
	}
	return RotateToken(ctx, ts)
}

// SetToken stores the hash of a token the operator chose (the config
// file's server.token), unless it is stored already.
func SetToken(ctx context.Context, ts TokenStore, token string) error {
	h, err := ts.TokenHash(ctx)
	if err != nil {
		return fmt.Errorf("read the server token: %w", err)
	}
	if h == hashToken(token) {
		return nil
	}
	if err := ts.SetTokenHash(ctx, hashToken(token)); err != nil {
		return fmt.Errorf("store the server token: %w", err)
	}
	return nil
}

// RotateToken makes a new token and stores its hash, so the old token (and
// every UI session opened with it) stops working. It returns the new token.
func RotateToken(ctx context.Context, ts TokenStore) (string, error) {
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	if err := ts.SetTokenHash(ctx, hashToken(tok)); err != nil {
		return "", fmt.Errorf("store the server token: %w", err)
	}
	return tok, nil
}

// tokenSetting is the control store's setting that holds the token's hash.
const tokenSetting = "server.token_sha256"

// serviceTokens keeps the token's hash among the control store's settings.
type serviceTokens struct{ svc *pipeline.Service }

// ServiceTokens is the TokenStore of a pipelines service: its control
// store, so every process on one store shares the token.
func ServiceTokens(svc *pipeline.Service) TokenStore { return serviceTokens{svc} }

func (t serviceTokens) TokenHash(ctx context.Context) (string, error) {
	return t.svc.Setting(ctx, tokenSetting)
}

func (t serviceTokens) SetTokenHash(ctx context.Context, hash string) error {
	return t.svc.SetSetting(ctx, tokenSetting, hash)
}
