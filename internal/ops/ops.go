package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Client is what ops needs of the Stripe client (*stripe.Client): single
// requests, paced and retried, and search pages.
type Client interface {
	Do(ctx context.Context, req *stripe.Request) (*stripe.Response, error)
	Search(ctx context.Context, path string, q url.Values, max int, fn func(json.RawMessage) error) error
}

var _ Client = (*stripe.Client)(nil)

// Ops runs operations on one Stripe account. It is safe for concurrent use.
type Ops struct {
	Client Client
	Logger *slog.Logger
}

// New returns an Ops over c; a nil logger discards logs.
func New(c Client, logger *slog.Logger) *Ops {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ops{Client: c, Logger: logger}
}

// Object is one Stripe object returned by a write.
type Object struct {
	ID  string
	Raw json.RawMessage
	// Replayed is true when Stripe answered from its idempotency cache:
	// an earlier request with the same key already did the work.
	Replayed bool
}

// LookupStream returns a top-level stream by name, with a "did you mean"
// when the name is close to one.
func LookupStream(name string) (catalog.Stream, error) {
	s, ok := catalogLookup(name)
	if !ok {
		var names []string
		for _, st := range catalogAll() {
			if st.Parent == "" {
				names = append(names, st.Name)
			}
		}
		if hint := closest(name, names); hint != "" {
			return catalog.Stream{}, fmt.Errorf("unknown stream %q (did you mean %s?): `stripeline streams` lists them", name, hint)
		}
		return catalog.Stream{}, fmt.Errorf("unknown stream %q: `stripeline streams` lists them", name)
	}
	if strings.Contains(s.Path, "{") {
		return catalog.Stream{}, fmt.Errorf("stream %s is listed under its parent %s (%s): operate on it through the parent's endpoints", s.Name, s.Parent, s.Path)
	}
	return s, nil
}

// SearchableStreams lists the streams that have a search endpoint.
func SearchableStreams() []string {
	var out []string
	for _, s := range catalogAll() {
		if s.Searchable {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// ObjectPath is the endpoint of one object of a top-level stream.
func ObjectPath(s catalog.Stream, id string) string {
	return s.Path + "/" + url.PathEscape(id)
}

// Get retrieves one object, expanding the given fields (expand[]).
func (o *Ops) Get(ctx context.Context, stream, id string, expand []string) (json.RawMessage, error) {
	s, err := LookupStream(stream)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, e := range expand {
		if e = strings.TrimSpace(e); e != "" {
			q.Add("expand[]", e)
		}
	}
	resp, err := o.Client.Do(ctx, &stripe.Request{Method: http.MethodGet, Path: ObjectPath(s, id), Query: q})
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", s.Name, id, err)
	}
	return json.RawMessage(resp.Body), nil
}

// Search runs a search query on a searchable stream and calls fn for up to
// limit results (0: all). Search lags writes by up to a minute.
func (o *Ops) Search(ctx context.Context, stream, query string, limit int, fn func(json.RawMessage) error) error {
	s, err := LookupStream(stream)
	if err != nil {
		return err
	}
	if !s.Searchable {
		return fmt.Errorf("stream %s cannot be searched: searchable streams are %s", s.Name, strings.Join(SearchableStreams(), ", "))
	}
	if strings.TrimSpace(query) == "" {
		return errors.New("empty search query: e.g. \"email:'a@b.c'\" or \"metadata['plan']:'pro'\"")
	}
	q := url.Values{"query": {query}}
	if err := o.Client.Search(ctx, s.Path+"/search", q, limit, fn); err != nil {
		return fmt.Errorf("search %s: %w", s.Name, err)
	}
	return nil
}

// Create validates params against the create operation's body schema and
// creates one object. An empty idemKey lets the client generate one.
func (o *Ops) Create(ctx context.Context, stream string, p Params, idemKey string) (*Object, error) {
	s, err := LookupStream(stream)
	if err != nil {
		return nil, err
	}
	body, err := CreateSchema(s)
	if err != nil {
		return nil, err
	}
	if err := Validate(body, p); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.Name, err)
	}
	return o.post(ctx, "create "+s.Name, s.Path, p, idemKey)
}

// Update validates params against the update operation's body schema and
// updates one object. "metadata[k]=" (empty) unsets a metadata key.
func (o *Ops) Update(ctx context.Context, stream, id string, p Params, idemKey string) (*Object, error) {
	s, err := LookupStream(stream)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	body, err := UpdateSchema(s)
	if err != nil {
		return nil, err
	}
	if err := Validate(body, p); err != nil {
		return nil, fmt.Errorf("update %s %s: %w", s.Name, id, err)
	}
	return o.post(ctx, "update "+s.Name+" "+id, ObjectPath(s, id), p, idemKey)
}

// Delete deletes one object of a deletable stream.
func (o *Ops) Delete(ctx context.Context, stream, id string) (*Object, error) {
	s, err := LookupStream(stream)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	if !s.Deletable {
		return nil, fmt.Errorf("%s cannot be deleted through the API", s.Name)
	}
	resp, err := o.Client.Do(ctx, &stripe.Request{Method: http.MethodDelete, Path: ObjectPath(s, id)})
	if err != nil {
		return nil, fmt.Errorf("delete %s %s: %w", s.Name, id, err)
	}
	return &Object{ID: id, Raw: resp.Body}, nil
}

func (o *Ops) post(ctx context.Context, what, path string, p Params, idemKey string) (*Object, error) {
	resp, err := o.Client.Do(ctx, &stripe.Request{Method: http.MethodPost, Path: path, Body: p.Values(), IdempotencyKey: idemKey})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var head struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(resp.Body, &head)
	return &Object{ID: head.ID, Raw: resp.Body, Replayed: resp.Replayed}, nil
}

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") || strings.TrimSpace(id) != id {
		return fmt.Errorf("%q is not an object id", id)
	}
	return nil
}

// CreateSchema returns the body schema of POST <list path> for a stream.
func CreateSchema(s catalog.Stream) (*catalog.Schema, error) {
	op, ok := lookupOperation(http.MethodPost, s.Path)
	if !ok || op.Body == nil {
		return nil, fmt.Errorf("%s cannot be created through the API (no POST %s)", s.Name, s.Path)
	}
	return op.Body, nil
}

// UpdateSchema returns the body schema of POST <list path>/{id} for a stream.
func UpdateSchema(s catalog.Stream) (*catalog.Schema, error) {
	op, ok := itemOperation(http.MethodPost, s)
	if !ok || op.Body == nil {
		return nil, fmt.Errorf("%s cannot be updated through the API (no POST %s/{id})", s.Name, s.Path)
	}
	return op.Body, nil
}

// itemOperation finds the operation on one object of s: the spec names the
// id parameter per endpoint ({customer}, {id}, {intent}, …).
func itemOperation(method string, s catalog.Stream) (*catalog.Operation, bool) {
	for _, name := range itemParamNames(s) {
		if op, ok := lookupOperation(method, s.Path+"/{"+name+"}"); ok {
			return op, true
		}
	}
	return nil, false
}

// itemParamNames lists likely names of the id path parameter of s, most
// likely first: the singular of the last path segment, then the spec's
// other spellings.
func itemParamNames(s catalog.Stream) []string {
	last := s.Path[strings.LastIndexByte(s.Path, '/')+1:]
	var names []string
	if p, ok := specItemParam(s.Path); ok {
		names = append(names, p)
	}
	if s.Object != "" {
		names = append(names, s.Object)
	}
	sing := strings.TrimSuffix(last, "s")
	if strings.HasSuffix(last, "ies") {
		sing = strings.TrimSuffix(last, "ies") + "y"
	}
	names = append(names, sing, "id", "intent", "session", "configuration", "item", "link",
		"schedule", "subscription_exposed_id", "shipping_rate_token", "dispute", "reader", "location")
	return names
}

// ValidateCreate checks params for creating an object of stream without
// sending anything.
func ValidateCreate(stream string, p Params) error {
	s, err := LookupStream(stream)
	if err != nil {
		return err
	}
	body, err := CreateSchema(s)
	if err != nil {
		return err
	}
	if err := Validate(body, p); err != nil {
		return fmt.Errorf("create %s: %w", s.Name, err)
	}
	return nil
}

// ValidateUpdate checks params for updating an object of stream without
// sending anything.
func ValidateUpdate(stream string, p Params) error {
	s, err := LookupStream(stream)
	if err != nil {
		return err
	}
	body, err := UpdateSchema(s)
	if err != nil {
		return err
	}
	if err := Validate(body, p); err != nil {
		return fmt.Errorf("update %s: %w", s.Name, err)
	}
	return nil
}
