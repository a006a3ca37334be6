package ops

import (
	"net/http"

	"github.com/stripeline/stripeline/internal/catalog"
)

// CanDelete reports whether the API has a DELETE request for one object of
// s. The catalog's Deletable also counts objects that only get deleted
// some other way (a price has a deleted form but no DELETE /v1/prices/{id}).
func CanDelete(s catalog.Stream) bool {
	_, ok := itemOperation(http.MethodDelete, s)
	return ok
}
