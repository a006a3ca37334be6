package server

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every API route; TestOpenAPICoversRoutes holds it to
// the routes registered.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// GET /api/v1/openapi.json
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
