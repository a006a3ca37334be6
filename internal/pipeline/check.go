package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Stream access as a connection check reports it.
const (
	AccessReadable  = "readable"
	AccessForbidden = "forbidden"
	AccessError     = "error"
)

// CheckReport is what a connection check found: the account, the key's
// mode and kind (the key itself only redacted), and which streams it may
// read. It is the JSON of `stripeline check --format json` and of the API's
// connection test.
type CheckReport struct {
	Account struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name,omitempty"`
	} `json:"account"`
	ConnectedAccount string         `json:"connected_account,omitempty"`
	Mode             string         `json:"mode"`
	KeyType          string         `json:"key_type"`
	Key              stripe.Secret  `json:"key"`
	APIBase          string         `json:"api_base"`
	StripeVersion    string         `json:"stripe_version"`
	Readable         int            `json:"readable"`
	Forbidden        int            `json:"forbidden"`
	Errors           int            `json:"errors"`
	Streams          []StreamAccess `json:"streams"`
}

// StreamAccess is one probed stream.
type StreamAccess struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	Access     string `json:"access"`
	Permission string `json:"permission,omitempty"`
	Error      string `json:"error,omitempty"`
}

// CheckClientConfig makes a client answer a connection check in seconds
// rather than ride out a long outage.
func CheckClientConfig(c *stripe.Config) {
	c.MaxRetries = 2
	c.MaxBackoff = 2 * time.Second
	c.Timeout = 30 * time.Second
}

// Check tests a connection: GET /v1/account, then one object of every
// top-level stream, to see which the key may read (restricted keys lack
// some permissions). It fails only when the account call fails.
func Check(ctx context.Context, client *stripe.Client) (*CheckReport, error) {
	body, err := client.Get(ctx, "/v1/account", nil)
	if err != nil {
		return nil, err
	}
	r := &CheckReport{
		ConnectedAccount: client.Account(),
		Mode:             client.Key().Mode(),
		KeyType:          client.Key().Kind(),
		Key:              client.Key(),
		APIBase:          client.APIBase(),
		StripeVersion:    client.Version(),
	}
	acct := gjson.GetManyBytes(body, "id", "settings.dashboard.display_name", "business_profile.name")
	r.Account.ID = acct[0].String()
	r.Account.DisplayName = acct[1].String()
	if r.Account.DisplayName == "" {
		r.Account.DisplayName = acct[2].String()
	}
	r.Streams = probeStreams(ctx, client)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, s := range r.Streams {
		switch s.Access {
		case AccessReadable:
			r.Readable++
		case AccessForbidden:
			r.Forbidden++
		default:
			r.Errors++
		}
	}
	return r, nil
}

// probeStreams lists one object of every top-level stream (no parent, no
// required parameter) concurrently; the client's buckets pace the probes.
func probeStreams(ctx context.Context, client *stripe.Client) []StreamAccess {
	var streams []catalog.Stream
	for _, s := range catalog.All() {
		if s.Parent == "" && s.ParentParam == "" {
			streams = append(streams, s)
		}
	}
	out := make([]StreamAccess, len(streams))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(8, len(streams)) {
		wg.Go(func() {
			for i := range work {
				out[i] = probe(ctx, client, streams[i])
			}
		})
	}
	for i := range streams {
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

func probe(ctx context.Context, client *stripe.Client, s catalog.Stream) StreamAccess {
	res := StreamAccess{Name: s.Name, Path: s.Path}
	q := url.Values{"limit": {"1"}}
	for k, v := range s.ListParams {
		q.Set(k, v)
	}
	_, err := client.Do(ctx, &stripe.Request{Path: s.Path, Query: q})
	if errors.Is(err, stripe.ErrInvalidRequest) {
		// A few lists (e.g. /v1/reporting/report_types) take no limit.
		q.Del("limit")
		_, err = client.Do(ctx, &stripe.Request{Path: s.Path, Query: q})
	}
	var se *stripe.Error
	switch {
	case err == nil:
		res.Access = AccessReadable
	case errors.As(err, &se) && se.Kind == stripe.ErrPermission:
		res.Access = AccessForbidden
		res.Permission = se.Permission
	default:
		res.Access = AccessError
		res.Error = err.Error()
	}
	return res
}

// CheckConnection runs Check with a connection: a new pipeline's (name
// ""), or the named pipeline's changed as c says. A connection with no key
// of its own (KeyRef "stored", APIKey empty) uses the named pipeline's
// stored key.
func (s *Service) CheckConnection(ctx context.Context, name string, c Connection) (*CheckReport, error) {
	if c.KeyRef == "" && c.APIKey != "" {
		c.KeyRef = KeyRefStored
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	rec := &record{p: Pipeline{Name: name, Connection: c}}
	var key stripe.Secret
	switch {
	case c.APIKey != "":
		key = c.APIKey
	case strings.HasPrefix(c.KeyRef, "env:"):
		k, err := s.resolveKey(rec)
		if err != nil {
			return nil, err
		}
		key = k
	default:
		if name == "" {
			return nil, fieldErr("api_key", "", "is required: give the key to test, or a reference env:NAME")
		}
		stored, err := s.st.pipeline(ctx, name)
		if err != nil {
			return nil, err
		}
		if stored.sealed == "" {
			return nil, fieldErr("api_key", "", "is not stored for pipeline %s: give the key to test, or a reference env:NAME", name)
		}
		rec.sealed = stored.sealed
		if key, err = s.resolveKey(rec); err != nil {
			return nil, err
		}
	}
	cfg := stripe.Config{Key: key, APIBase: c.APIBase, Account: c.Account, Proxy: c.Proxy,
		Logger: s.log, UserAgent: "stripeline-service"}
	CheckClientConfig(&cfg)
	if s.opts.ClientOption != nil {
		s.opts.ClientOption(&cfg)
	}
	client, err := stripe.New(cfg)
	if err != nil {
		return nil, &FieldError{Field: "api_key", Err: err}
	}
	return Check(ctx, client)
}
