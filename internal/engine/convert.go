package engine

import (
	"context"
	"encoding/json"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Converter turns Stripe objects of one stream into rows of its replica
// table exactly as a sync writes them: the stream's columns (or the
// selected fields, id first), each value converted to its column's type
// (unix times stay integers, an expanded reference keeps its id, objects
// and arrays stay JSON). Unlike a sync it has no destination to add
// columns to, so fields the catalog does not list are left out. A
// Converter is safe for concurrent use.
type Converter struct{ t *table }

// NewConverter returns the converter of stream s. fields selects columns
// as Options.Fields does; none means every column of the catalog.
func NewConverter(s catalog.Stream, fields []string) *Converter {
	if len(fields) == 0 {
		// A selection of every column: the table never grows.
		for _, c := range s.Columns {
			fields = append(fields, c.Name)
		}
	}
	return &Converter{t: newTable(s, fields, nil)}
}

// Columns are the row's columns, in the order of its Values.
func (c *Converter) Columns() []dest.Column { return c.t.shape().Columns }

// Row converts one object; parent is the parent's id for a child stream.
// The row's values may share the memory of obj. An object without an id
// is an error.
func (c *Converter) Row(obj json.RawMessage, parent string) (dest.Row, error) {
	return c.t.row(context.Background(), obj, parent, false)
}
