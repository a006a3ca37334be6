package sqldest

import (
	"strings"

	"github.com/stripeline/stripeline/internal/dest"
)

// RowSet is rows of one table for a dialect to upsert (WriteRows) or
// insert (InsertNew): each row's values, then the bookkeeping values
// (deleted, synced at, account, version), in the order of Names.
type RowSet struct {
	// Table is the table's name (Syntax.Table quotes it).
	Table string
	// Columns are the columns of each row's Values, the id among them. A
	// set of deletion stubs has the id alone: upserting it sets only the
	// bookkeeping columns of a stored row.
	Columns []dest.Column
	Rows    []dest.MergedRow
	// SyncedAt (unix seconds) and Account are the same for every row.
	SyncedAt int64
	Account  string
	// OnlyNewer makes the upsert conditional on the version (Batch.OnlyNewer).
	OnlyNewer bool
}

// Names lists the columns a row of the set fills: the Columns, then the
// bookkeeping ones.
func (s *RowSet) Names() []string {
	names := make([]string, 0, len(s.Columns)+4)
	for _, c := range s.Columns {
		names = append(names, c.Name)
	}
	for _, c := range dest.Bookkeeping() {
		names = append(names, c.Name)
	}
	return names
}

// Types lists the types of Names' columns.
func (s *RowSet) Types() []dest.Column {
	return append(append([]dest.Column(nil), s.Columns...), dest.Bookkeeping()...)
}

// Args appends the values of row i, in the order of Names, to args.
func (s *RowSet) Args(args []any, i int) []any {
	r := &s.Rows[i]
	return append(append(args, r.Values...), r.Deleted, s.SyncedAt, s.Account, r.Version)
}

// Upsert is the dialect's clause that makes an INSERT of the set's Names
// an upsert by id: every column but the id is set from the inserted row,
// only where it is newer when the set is OnlyNewer.
func (s *RowSet) Upsert(d Syntax) string {
	names := s.Names()
	update := make([]string, 0, len(names)-1)
	for _, n := range names {
		if n != "id" {
			update = append(update, n)
		}
	}
	newer := ""
	if s.OnlyNewer {
		newer = dest.ColVersion
	}
	return d.OnConflict(s.Table, []string{"id"}, update, newer)
}

// Insert is INSERT INTO table (names) VALUES (?, …), … with n rows of
// placeholders.
func Insert(d Syntax, table string, names []string, n int) string {
	var b strings.Builder
	one := "(?" + strings.Repeat(", ?", len(names)-1) + ")"
	b.Grow(len(table) + 16*len(names) + n*(len(one)+2))
	b.WriteString("INSERT INTO " + d.Table(table) + " (")
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Quote(name))
	}
	b.WriteString(") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

// OnConflict is the clause of the dialects that write upserts as
// PostgreSQL and SQLite do: ON CONFLICT (key) DO UPDATE SET c =
// excluded.c, …, with newer a WHERE on the stored row's version.
func OnConflict(d Syntax, table string, key, update []string, newer string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	for i, k := range key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Quote(k))
	}
	b.WriteString(") DO UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Quote(c) + " = excluded." + d.Quote(c))
	}
	if newer != "" {
		b.WriteString(" WHERE " + d.Quote(table) + "." + d.Quote(newer) + " < excluded." + d.Quote(newer))
	}
	return b.String()
}
