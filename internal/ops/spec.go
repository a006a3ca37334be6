package ops

import (
	"strings"
	"sync"

	"github.com/stripeline/stripeline/internal/catalog"
)

// The catalog functions ops uses, replaceable in tests.
var (
	catalogLookup   = catalog.Lookup
	catalogAll      = catalog.All
	lookupOperation = catalog.LookupOperation
)

var (
	itemParamsOnce sync.Once
	itemParams     map[string]string // list path → the {param} of its object endpoint
)

// specItemParam returns the spec's name for the id parameter of the object
// endpoints under listPath ("/v1/customers" → "customer", "/v1/products" → "id").
func specItemParam(listPath string) (string, bool) {
	itemParamsOnce.Do(func() {
		itemParams = map[string]string{}
		for _, op := range catalog.Operations() {
			i := strings.LastIndexByte(op.Path, '/')
			if i < 0 || !strings.HasPrefix(op.Path[i+1:], "{") || !strings.HasSuffix(op.Path, "}") {
				continue
			}
			parent := op.Path[:i]
			if strings.Contains(parent, "{") {
				continue
			}
			if _, seen := itemParams[parent]; !seen || op.Method == "POST" {
				itemParams[parent] = strings.Trim(op.Path[i+1:], "{}")
			}
		}
	})
	p, ok := itemParams[listPath]
	return p, ok
}
