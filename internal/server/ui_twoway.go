package server

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/twoway"
)

// twoWayText is a pipeline's two_way option as the form shows it: one
// line "stream: field, field" per stream, and the policy.
func twoWayText(c *twoway.Config) (lines, policy string) {
	if !c.Enabled() {
		return "", ""
	}
	names := make([]string, 0, len(c.Streams))
	for n := range c.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %s\n", n, strings.Join(c.Streams[n], ", "))
	}
	return b.String(), string(c.Conflicts)
}

// formTwoWay reads the form's two-way lines; nil when the form has no
// such field (the option is kept), an empty option when it is blank (the
// option is turned off).
func formTwoWay(v url.Values) (*twoway.Config, error) {
	if _, ok := v["two_way"]; !ok {
		return nil, nil
	}
	c := &twoway.Config{Streams: map[string][]string{}, Conflicts: twoway.Policy(strings.TrimSpace(v.Get("two_way_conflicts")))}
	for i, line := range strings.Split(v.Get("two_way"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, list, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, badRequest("two_way", fmt.Sprintf("two_way: line %d %q: write one stream a line, as stream: field, field (e.g. customers: email, name, metadata)", i+1, line))
		}
		var fields []string
		for _, f := range strings.Split(list, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		c.Streams[name] = fields
	}
	return c, nil
}
