package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// clause is one term of a search query: field op value, maybe negated.
type clause struct {
	field, op, value string
	null, neg        bool
	metaKey          string
}

// parseQuery parses Stripe's search query language: clauses joined by AND
// or OR (not both), each `field:value`, `field~value`, `field>N` … with
// `-` negation, `metadata['key']` fields and the `null` value.
func parseQuery(q string) ([]clause, bool, error) {
	var out []clause
	or, and := false, false
	s := strings.TrimSpace(q)
	if s == "" {
		return nil, false, fmt.Errorf("the query is empty")
	}
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		c, rest, err := parseClause(s)
		if err != nil {
			return nil, false, err
		}
		out = append(out, c)
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		switch {
		case strings.HasPrefix(rest, "AND "):
			and = true
			s = rest[4:]
		case strings.HasPrefix(rest, "OR "):
			or = true
			s = rest[3:]
		default:
			return nil, false, fmt.Errorf("unexpected %q: join clauses with AND or OR", firstWord(rest))
		}
		if strings.TrimSpace(s) == "" {
			return nil, false, fmt.Errorf("the query ends with a dangling operator")
		}
	}
	if and && or {
		return nil, false, fmt.Errorf("you cannot combine AND and OR in the same query")
	}
	return out, or, nil
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i > 0 {
		return s[:i]
	}
	return s
}

func parseClause(s string) (clause, string, error) {
	var c clause
	if strings.HasPrefix(s, "-") {
		c.neg = true
		s = s[1:]
	}
	i := 0
	if strings.HasPrefix(s, "metadata[") {
		j := strings.Index(s, "]")
		if j < 0 {
			return c, "", fmt.Errorf("unterminated metadata key")
		}
		key := strings.Trim(s[len("metadata["):j], `'"`)
		if key == "" {
			return c, "", fmt.Errorf("empty metadata key")
		}
		c.field, c.metaKey = "metadata", key
		i = j + 1
	} else {
		for i < len(s) && (s[i] == '_' || s[i] == '.' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		c.field = s[:i]
		if c.field == "" {
			return c, "", fmt.Errorf("expected a field name at %q", firstWord(s))
		}
	}
	s = s[i:]
	for _, op := range []string{">=", "<=", ":", "~", ">", "<"} {
		if strings.HasPrefix(s, op) {
			c.op = op
			s = s[len(op):]
			break
		}
	}
	if c.op == "" {
		return c, "", fmt.Errorf("expected an operator (:, ~, >, <, >=, <=) after %q", c.field)
	}
	if s == "" {
		return c, "", fmt.Errorf("missing value for %q", c.field)
	}
	switch s[0] {
	case '\'', '"':
		q := s[0]
		j := 1
		var b strings.Builder
		for ; j < len(s) && s[j] != q; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j >= len(s) {
			return c, "", fmt.Errorf("unterminated string for %q", c.field)
		}
		c.value = b.String()
		s = s[j+1:]
	default:
		j := strings.IndexByte(s, ' ')
		if j < 0 {
			j = len(s)
		}
		c.value = s[:j]
		s = s[j:]
		if c.value == "null" {
			c.null = true
		} else if _, err := strconv.ParseFloat(c.value, 64); err != nil {
			return c, "", fmt.Errorf("value %q for %q must be quoted", c.value, c.field)
		}
	}
	if c.op == "~" && len([]rune(c.value)) < 3 {
		return c, "", fmt.Errorf("substring search on %q needs at least 3 characters", c.field)
	}
	if (c.op == ">" || c.op == "<" || c.op == ">=" || c.op == "<=") && c.null {
		return c, "", fmt.Errorf("null cannot be compared with %s", c.op)
	}
	return c, s, nil
}

func (c clause) match(data []byte) bool {
	var v gjson.Result
	if c.metaKey != "" {
		v = gjson.GetBytes(data, "metadata."+gjsonEscape(c.metaKey))
	} else {
		v = gjson.GetBytes(data, c.field)
	}
	if v.IsObject() && v.Get("id").Exists() {
		v = v.Get("id")
	}
	var ok bool
	switch {
	case c.null:
		ok = !v.Exists() || v.Type == gjson.Null
	case c.op == ":":
		ok = v.Exists() && v.Type != gjson.Null && strings.EqualFold(v.String(), c.value)
	case c.op == "~":
		ok = v.Exists() && strings.Contains(strings.ToLower(v.String()), strings.ToLower(c.value))
	default:
		want, err := strconv.ParseFloat(c.value, 64)
		if err != nil || v.Type != gjson.Number {
			ok = false
			break
		}
		got := v.Float()
		switch c.op {
		case ">":
			ok = got > want
		case "<":
			ok = got < want
		case ">=":
			ok = got >= want
		case "<=":
			ok = got <= want
		}
	}
	if c.neg {
		return !ok
	}
	return ok
}

func gjsonEscape(k string) string {
	r := strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`)
	return r.Replace(k)
}

// searchArgs are a search request's parsed arguments.
type searchArgs struct {
	clauses     []clause
	or          bool
	limit       int
	offset      int  // from the page token
	totalWanted bool // expand[]=total_count
}

// search answers GET /v1/<stream>/search.
func (e *Emulator) search(r *http.Request, tg *target, a *account) (response, *apiError) {
	sa, ae := e.parseSearch(r.URL.Query(), tg)
	if ae != nil {
		return response{}, ae
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	recs := a.tables[tg.def.name].recs
	var data [][]byte
	total, more := 0, false
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		if !sa.hit(rec.data) {
			continue
		}
		total++
		if total <= sa.offset {
			continue
		}
		if len(data) == sa.limit {
			more = true
			if !sa.totalWanted {
				break
			}
			continue
		}
		data = append(data, rec.data)
	}
	return ok200(renderSearch(r.URL.Path, data, more, sa, total)), nil
}

// parseSearch checks a search's query, fields, limit and page token.
func (e *Emulator) parseSearch(q url.Values, tg *target) (searchArgs, *apiError) {
	var sa searchArgs
	d := tg.def
	if ae := e.checkQuery(q, tg.tmpl); ae != nil {
		return sa, ae
	}
	query := q.Get("query")
	if query == "" {
		return sa, invalid("query", "Missing required param: query.")
	}
	var err error
	sa.clauses, sa.or, err = parseQuery(query)
	if err != nil {
		return sa, invalid("query", "Invalid search query: "+err.Error())
	}
	schema := e.sp.component(d.object)
	for _, c := range sa.clauses {
		top := c.field
		if i := strings.IndexByte(top, '.'); i > 0 {
			top = top[:i]
		}
		if _, known := schema.Properties[top]; !known {
			return sa, invalid("query", fmt.Sprintf("Field '%s' is an unsupported search field for resource %s.", c.field, objectName(d.object)))
		}
	}
	la, ae := parseListArgs(url0(q, "limit"), false)
	if ae != nil {
		return sa, ae
	}
	sa.limit = la.limit
	if p := q.Get("page"); p != "" {
		b, err := base64.RawURLEncoding.DecodeString(p)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 {
			return sa, invalid("page", "Invalid page token: "+p)
		}
		sa.offset = n
	}
	for k, v := range q {
		if strings.HasPrefix(k, "expand") {
			for _, x := range v {
				if x == "total_count" {
					sa.totalWanted = true
				}
			}
		}
	}
	return sa, nil
}

// hit reports whether an object matches every clause (or any, for OR).
func (sa searchArgs) hit(data []byte) bool {
	for _, c := range sa.clauses {
		m := c.match(data)
		if sa.or && m {
			return true
		}
		if !sa.or && !m {
			return false
		}
	}
	return !sa.or
}

// renderSearch writes a search_result page.
func renderSearch(path string, data [][]byte, more bool, sa searchArgs, total int) []byte {
	b := []byte(`{"object":"search_result","data":[`)
	for i, x := range data {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, x...)
	}
	b = append(b, `],"has_more":`...)
	b = strconv.AppendBool(b, more)
	b = append(b, `,"next_page":`...)
	if more {
		b = appendString(b, base64.RawURLEncoding.EncodeToString([]byte("offset:"+strconv.Itoa(sa.offset+len(data)))))
	} else {
		b = append(b, "null"...)
	}
	if sa.totalWanted {
		b = append(b, `,"total_count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, `,"url":`...)
	b = appendString(b, path)
	return append(b, '}')
}

// url0 keeps only the named keys of a query.
func url0(q map[string][]string, keys ...string) map[string][]string {
	out := map[string][]string{}
	for _, k := range keys {
		if v, ok := q[k]; ok {
			out[k] = v
		}
	}
	return out
}
