package ops

import "github.com/stripeline/stripeline/internal/catalog"

// The catalog functions ops uses, replaceable in tests.
var (
	catalogLookup = catalog.Lookup
	catalogAll    = catalog.All
	// lookupOperation finds an operation's request shape in the catalog.
	lookupOperation = func(method, path string) (*catalog.Operation, bool) {
		return nil, false
	}
)
