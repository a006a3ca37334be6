package sqldest_test

import (
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT id FROM t WHERE a = ? AND b IN (?, ?)`, `SELECT id FROM t WHERE a = $1 AND b IN ($2, $3)`},
		{`SELECT '?', "a?b", ? FROM t`, `SELECT '?', "a?b", $1 FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT E'it\'s ?', ?`, `SELECT E'it\'s ?', $1`},
		{`SELECT 'back\', ?`, `SELECT 'back\', $1`}, // standard strings: \ is a character
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{`SELECT /* ? */ ?`, `SELECT /* ? */ $1`},
		{`SELECT $$ ? $$, $tag$ ?'$tag$, ?`, `SELECT $$ ? $$, $tag$ ?'$tag$, $1`},
		{`SELECT a$1, ?`, `SELECT a$1, $1`},
		{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
		{`SELECT "ü?" , ?`, `SELECT "ü?" , $1`},
	} {
		if got := sqldest.Rebind(tc.in); got != tc.want {
			t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRebind checks that Rebind only ever replaces question marks, each by
// the next $n, and leaves every other byte in place.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{`SELECT ? FROM "t?" WHERE x = '?'`, "-- ?\n?", `$a$?$a$?`, `E'\'?'?`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := sqldest.Rebind(q)
		n := 0
		for i, j := 0, 0; i < len(q); i++ {
			if j >= len(got) {
				t.Fatalf("Rebind(%q) = %q: output ends early", q, got)
			}
			if q[i] == got[j] {
				j++
				continue
			}
			if q[i] != '?' {
				t.Fatalf("Rebind(%q) = %q: byte %d changed", q, got, i)
			}
			n++
			want := "$" + itoa(n)
			if !strings.HasPrefix(got[j:], want) {
				t.Fatalf("Rebind(%q) = %q: placeholder %d is not %s", q, got, n, want)
			}
			j += len(want)
		}
	})
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
