package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Get sends a GET and returns the body.
func (c *Client) Get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	res, err := c.Do(ctx, &Request{Method: "GET", Path: path, Query: q})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Page is one page of a list or search result.
type Page struct {
	// Data holds the page's objects, each a sub-slice of the response body.
	Data    []json.RawMessage
	HasMore bool
	// NextPage is the search cursor ("" at the end or for lists).
	NextPage string
	URL      string
}

// ListPage gets one page of path and splits data[] into raw objects without
// decoding them.
func (c *Client) ListPage(ctx context.Context, path string, q url.Values) (*Page, error) {
	body, err := c.Get(ctx, path, q)
	if err != nil {
		return nil, err
	}
	p, err := ParsePage(body)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	return p, nil
}

// ParsePage splits a list or search response into its objects. Each element
// of Data aliases body.
func ParsePage(body []byte) (*Page, error) {
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("the response is not a JSON object")
	}
	p := &Page{}
	var data gjson.Result
	// One pass over the top-level keys, then one over data's elements.
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "data":
			data = v
		case "has_more":
			p.HasMore = v.Bool()
		case "next_page":
			p.NextPage = v.String()
		case "url":
			p.URL = v.String()
		}
		return true
	})
	if !data.IsArray() {
		return nil, errors.New("the response has no data array")
	}
	ok := true
	data.ForEach(func(_, v gjson.Result) bool {
		if !v.IsObject() || !strings.HasSuffix(v.Raw, "}") {
			ok = false
			return false
		}
		raw := v.Raw
		if v.Index > 0 && v.Index+len(raw) <= len(body) && string(body[v.Index:v.Index+len(raw)]) == raw {
			p.Data = append(p.Data, json.RawMessage(body[v.Index:v.Index+len(raw):v.Index+len(raw)]))
		} else {
			p.Data = append(p.Data, json.RawMessage(raw))
		}
		return true
	})
	if !ok || !strings.HasSuffix(strings.TrimSpace(data.Raw), "]") {
		return nil, errors.New("the response's data array is malformed or cut short")
	}
	return p, nil
}

// Each calls fn for every object of the list at path, newest first, paging
// with limit=100 (unless q sets limit) and starting_after the last id. It
// stops at the first error fn returns.
func (c *Client) Each(ctx context.Context, path string, q url.Values, fn func(obj json.RawMessage) error) error {
	q = cloneValues(q)
	if q.Get("limit") == "" {
		q.Set("limit", "100")
	}
	for {
		p, err := c.ListPage(ctx, path, q)
		if err != nil {
			return err
		}
		for _, obj := range p.Data {
			if err := fn(obj); err != nil {
				return err
			}
		}
		if !p.HasMore || len(p.Data) == 0 {
			return nil
		}
		last := gjson.GetBytes(p.Data[len(p.Data)-1], "id").String()
		if last == "" {
			return fmt.Errorf("list %s: the last object of a page has no id to page from", path)
		}
		if last == q.Get("starting_after") {
			return fmt.Errorf("list %s: the API returned the same page twice (starting_after=%s)", path, last)
		}
		q.Set("starting_after", last)
	}
}

// Search calls fn for up to max objects (0: all) of a search endpoint
// (e.g. /v1/customers/search with q.Set("query", …)), following next_page.
// Search results lag writes; never use them for read-after-write.
func (c *Client) Search(ctx context.Context, path string, q url.Values, max int, fn func(json.RawMessage) error) error {
	q = cloneValues(q)
	if q.Get("limit") == "" {
		limit := 100
		if max > 0 && max < limit {
			limit = max
		}
		q.Set("limit", strconv.Itoa(limit))
	}
	n := 0
	for {
		p, err := c.ListPage(ctx, path, q)
		if err != nil {
			return err
		}
		for _, obj := range p.Data {
			if max > 0 && n >= max {
				return nil
			}
			if err := fn(obj); err != nil {
				return err
			}
			n++
		}
		if !p.HasMore || p.NextPage == "" || len(p.Data) == 0 || (max > 0 && n >= max) {
			return nil
		}
		if p.NextPage == q.Get("page") {
			return fmt.Errorf("search %s: the API returned the same page twice", path)
		}
		q.Set("page", p.NextPage)
	}
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q)+2)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
