package sqldest

import (
	"strconv"
	"strings"
)

// Rebind rewrites the ? placeholders of query as $1, $2, … for PostgreSQL.
// A ? inside a string literal ('…', E'…' with backslash escapes), a quoted
// name ("…"), a dollar-quoted string ($$…$$, $tag$…$tag$) or a comment (--
// to the end of the line, /* … */) is left alone, so is ?| or ?& outside
// them only if the statement has no arguments: callers with arguments
// write PostgreSQL's jsonb operators as functions (jsonb_exists).
func Rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); {
		j := skip(query, i)
		if j > i {
			b.WriteString(query[i:j])
			i = j
			continue
		}
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		} else {
			b.WriteByte(query[i])
		}
		i++
	}
	return b.String()
}

// skip returns the end of the quoted string, quoted name or comment that
// starts at i, or i when none does.
func skip(q string, i int) int {
	switch c := q[i]; {
	case c == '\'':
		escapes := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isWord(q[i-2]))
		return closeQuote(q, i+1, '\'', escapes)
	case c == '"':
		return closeQuote(q, i+1, '"', false)
	case c == '-' && strings.HasPrefix(q[i:], "--"):
		if k := strings.IndexByte(q[i:], '\n'); k >= 0 {
			return i + k + 1
		}
		return len(q)
	case c == '/' && strings.HasPrefix(q[i:], "/*"):
		if k := strings.Index(q[i+2:], "*/"); k >= 0 {
			return i + 2 + k + 2
		}
		return len(q)
	case c == '$' && (i == 0 || !isWord(q[i-1])):
		k := i + 1
		for k < len(q) && isWord(q[k]) && !(k == i+1 && q[k] >= '0' && q[k] <= '9') {
			k++
		}
		if k < len(q) && q[k] == '$' {
			tag := q[i : k+1]
			if end := strings.Index(q[k+1:], tag); end >= 0 {
				return k + 1 + end + len(tag)
			}
			return len(q)
		}
	}
	return i
}

// closeQuote returns the index after the quote that closes a string opened
// before i; a doubled quote is part of the string, and so is a quote after
// a backslash when escapes is set.
func closeQuote(q string, i int, quote byte, escapes bool) int {
	for i < len(q) {
		switch q[i] {
		case '\\':
			if escapes {
				i += 2
				continue
			}
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
