package sqldest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// column is one column of a bookkeeping table.
type column struct {
	name    string
	typ     catalog.Type
	notNull bool
}

// table is a bookkeeping table.
type table struct {
	name string
	cols []column
	key  []string
}

// bookkeeping returns the bookkeeping tables of the dialect: state and run
// history, the change log, and the lock holders where the run lock is a session's.
func (db *DB) bookkeeping() []table {
	tables := []table{
		{dest.StateTable, []column{
			{"pipeline", TypeKey, true}, {"stream", TypeKey, true}, {"cursor", catalog.TypeJSON, false}, {"updated_at", TypeTime, true},
		}, []string{"pipeline", "stream"}},
		{dest.RunsTable, []column{
			{"id", TypeKey, true}, {"pipeline", TypeKey, true}, {"started", TypeTime, true}, {"finished", TypeTime, false},
			{"status", TypeKey, true}, {"streams", catalog.TypeJSON, false}, {"error", catalog.TypeString, false},
		}, []string{"id"}},
		{dest.HistoryTable, []column{
			{"run", TypeKey, true}, {"seq", catalog.TypeInteger, true}, {"pipeline", TypeKey, true}, {"table_name", TypeKey, true},
			{"row_id", TypeKey, true}, {"op", TypeKey, true}, {"prev", catalog.TypeJSON, false},
			{"changed_at", catalog.TypeInteger, true}, {"valid_from", catalog.TypeInteger, false},
		}, []string{"run", "seq"}},
		eventsTable(),
	}
	if sl, ok := db.d.(SessionLocker); ok {
		tables = append(tables, table{dest.LocksTable, []column{
			{"pipeline", TypeKey, true}, {"host", TypeKey, true}, {"pid", catalog.TypeInteger, true}, {"run_id", TypeKey, true},
			{"since", TypeTime, true}, {sl.LockColumn(), catalog.TypeInteger, true},
		}, []string{"pipeline"}})
	}
	return tables
}

// setup creates what is missing of the bookkeeping tables, under the DDL
// lock, after the dialect's Setup statements.
func (db *DB) setup(ctx context.Context) error {
	tables := db.bookkeeping()
	var have []string
	if err := db.d.Read(ctx, func(c Conn) (err error) {
		have, err = db.d.Tables(ctx, c)
		return err
	}); err != nil {
		return err
	}
	missing := false
	for _, t := range tables {
		missing = missing || !slices.Contains(have, t.name)
	}
	if !missing {
		return nil
	}
	return db.d.DDL(ctx, func(c Conn) error {
		for _, s := range db.d.Setup() {
			if _, err := c.Exec(ctx, s); err != nil {
				return err
			}
		}
		for _, t := range tables {
			if _, err := c.Exec(ctx, db.createBookkeeping(t)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) createBookkeeping(t table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + db.d.Table(t.name) + " (")
	for _, c := range t.cols {
		b.WriteString(db.d.Quote(c.name) + " " + db.d.Type(c.typ))
		if c.notNull {
			b.WriteString(" NOT NULL")
		}
		b.WriteString(", ")
	}
	b.WriteString("PRIMARY KEY (" + db.names(t.key) + "))" + db.d.TableOptions())
	return b.String()
}

// names quotes and joins column names.
func (db *DB) names(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = db.d.Quote(c)
	}
	return strings.Join(q, ", ")
}

// Migrate creates the table or adds the columns it lacks (bookkeeping
// columns included: a table made by an earlier version gains the ones it
// lacks).
func (db *DB) Migrate(ctx context.Context, t dest.Table) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", t.Name, err)
	}
	if err := db.ensure(ctx, t); err != nil {
		return fmt.Errorf("migrate %s: %w", t.Name, err)
	}
	return nil
}

// ensure makes sure the table exists with every column of t. What the
// process knows is cached; another process may change the same table at
// once, so the columns are read again under the DDL lock before anything
// is created or added, and a column added meanwhile is no error.
func (db *DB) ensure(ctx context.Context, t dest.Table) error {
	if t.Name == "" {
		return fmt.Errorf("a table without a name")
	}
	want := append(slices.Clip(t.Columns), dest.Bookkeeping()...)
	db.ddlMu.Lock()
	defer db.ddlMu.Unlock()
	if cols := db.tables[t.Name]; cols != nil && !lacks(cols, want) {
		return nil
	}
	var cols map[string]catalog.Type
	err := db.d.DDL(ctx, func(c Conn) (err error) {
		if cols, err = db.d.Columns(ctx, c, t.Name); err != nil {
			return err
		}
		if cols == nil {
			if _, err := c.Exec(ctx, db.createTable(t)); err != nil {
				return err
			}
			// Another process may have created it first, with other columns.
			if cols, err = db.d.Columns(ctx, c, t.Name); err != nil {
				return err
			}
			if cols == nil {
				return fmt.Errorf("table %s is missing right after CREATE TABLE", t.Name)
			}
		}
		return db.addColumns(ctx, c, t.Name, cols, want)
	})
	if err != nil {
		return err
	}
	db.tables[t.Name] = cols
	return nil
}

// lacks reports whether want has a column cols does not.
func lacks(cols map[string]catalog.Type, want []dest.Column) bool {
	for _, c := range want {
		if _, ok := cols[c.Name]; !ok {
			return true
		}
	}
	return false
}

// createTable is the CREATE TABLE of a stream's table: the id first as
// the primary key, the table's columns, the bookkeeping ones.
func (db *DB) createTable(t dest.Table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + db.d.Table(t.Name) + " (" + db.d.Quote("id") + " " + db.d.Type(TypeKey) + " NOT NULL PRIMARY KEY")
	seen := map[string]bool{"id": true}
	for _, c := range t.Columns {
		if !seen[c.Name] {
			seen[c.Name] = true
			b.WriteString(", " + db.d.Quote(c.Name) + " " + db.d.Type(c.Type))
		}
	}
	for _, c := range dest.Bookkeeping() {
		b.WriteString(", " + db.d.Quote(c.Name) + " " + db.bookkeepingType(c))
	}
	b.WriteString(")" + db.d.TableOptions())
	return b.String()
}

// bookkeepingType is the SQL type of a bookkeeping column: never NULL
// but the write time.
func (db *DB) bookkeepingType(c dest.Column) string {
	switch c.Name {
	case dest.ColDeleted:
		return db.d.Type(c.Type) + " NOT NULL DEFAULT FALSE"
	case dest.ColAccount:
		return db.d.Type(TypeKey) + " NOT NULL DEFAULT ''"
	case dest.ColVersion:
		return db.d.Type(c.Type) + " NOT NULL DEFAULT 0"
	}
	return db.d.Type(c.Type)
}

// addColumns adds the columns of want that cols lacks, and records them.
func (db *DB) addColumns(ctx context.Context, c Conn, table string, cols map[string]catalog.Type, want []dest.Column) error {
	bk := map[string]dest.Column{}
	for _, col := range dest.Bookkeeping() {
		bk[col.Name] = col
	}
	for _, col := range want {
		if _, ok := cols[col.Name]; ok {
			continue
		}
		typ := db.d.Type(col.Type)
		if b, ok := bk[col.Name]; ok {
			typ = db.bookkeepingType(b)
		}
		_, err := c.Exec(ctx, "ALTER TABLE "+db.d.Table(table)+" ADD COLUMN "+db.d.Quote(col.Name)+" "+typ)
		if err != nil && db.d.Kind(err) != KindDuplicateColumn {
			return err
		}
		cols[col.Name] = col.Type
	}
	return nil
}
