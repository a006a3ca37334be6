package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Stream access as `check` reports it.
const (
	accessReadable  = "readable"
	accessForbidden = "forbidden"
	accessError     = "error"
)

// checkReport is the result of `stripeline check` (the JSON shape of --format json).
type checkReport struct {
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
	Streams          []streamAccess `json:"streams"`
}

// streamAccess is one probed stream.
type streamAccess struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	Access     string `json:"access"`
	Permission string `json:"permission,omitempty"`
	Error      string `json:"error,omitempty"`
}

func newCheckCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Test the connection: account, mode, key type and which streams the key may read",
		Long: `check calls GET /v1/account with the configured key, then lists one object of every
top-level stream to see which ones the key may read (restricted keys lack some permissions).

It exits 0 when the account call works, even if some streams are forbidden, and 1 with one
sentence when the key is rejected or Stripe cannot be reached.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runCheck(cmd.Context())
		},
	}
}

func (a *App) runCheck(ctx context.Context) error {
	// A connection test should answer in seconds, not ride out a long outage.
	client, err := a.Client(func(c *stripe.Config) {
		c.MaxRetries = 2
		c.MaxBackoff = 2 * time.Second
		c.Timeout = 30 * time.Second
	})
	if err != nil {
		return err
	}
	body, err := client.Get(ctx, "/v1/account", nil)
	if err != nil {
		return err
	}
	r := &checkReport{
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
		return fmt.Errorf("check: %w", err)
	}
	for _, s := range r.Streams {
		switch s.Access {
		case accessReadable:
			r.Readable++
		case accessForbidden:
			r.Forbidden++
		default:
			r.Errors++
		}
	}
	if a.Format == "json" {
		return a.printJSON(r)
	}
	return a.printCheck(r)
}

// probeStreams lists one object of every top-level stream (no parent, no
// required parameter) concurrently; the client's buckets pace the probes.
func probeStreams(ctx context.Context, client *stripe.Client) []streamAccess {
	var streams []catalog.Stream
	for _, s := range catalog.All() {
		if s.Parent == "" && s.ParentParam == "" {
			streams = append(streams, s)
		}
	}
	out := make([]streamAccess, len(streams))
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

func probe(ctx context.Context, client *stripe.Client, s catalog.Stream) streamAccess {
	res := streamAccess{Name: s.Name, Path: s.Path}
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
		res.Access = accessReadable
	case errors.As(err, &se) && se.Kind == stripe.ErrPermission:
		res.Access = accessForbidden
		res.Permission = se.Permission
	default:
		res.Access = accessError
		res.Error = err.Error()
	}
	return res
}

func (a *App) printCheck(r *checkReport) error {
	tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	name := r.Account.ID
	if r.Account.DisplayName != "" {
		name += " (" + r.Account.DisplayName + ")"
	}
	fmt.Fprintf(tw, "account\t%s\n", name)
	if r.ConnectedAccount != "" {
		fmt.Fprintf(tw, "acting on\t%s (Stripe-Account)\n", r.ConnectedAccount)
	}
	fmt.Fprintf(tw, "mode\t%s\n", r.Mode)
	fmt.Fprintf(tw, "key\t%s key %s\n", r.KeyType, r.Key)
	fmt.Fprintf(tw, "api base\t%s\n", r.APIBase)
	fmt.Fprintf(tw, "stripe-version\t%s\n", r.StripeVersion)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Streams) == 0 {
		_, err := fmt.Fprintln(a.Stdout, "\nno catalog streams to probe")
		return err
	}
	fmt.Fprintln(a.Stdout)
	tw = tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tPATH\tACCESS\tDETAIL")
	for _, s := range r.Streams {
		detail := s.Permission
		if s.Error != "" {
			detail = s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Path, s.Access, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "\n%d streams readable, %d forbidden, %d errors\n", r.Readable, r.Forbidden, r.Errors)
	if r.Forbidden > 0 {
		fmt.Fprintf(a.Stdout, "The key cannot read %d streams: grant the permissions listed above to sync them.\n", r.Forbidden)
	}
	return nil
}
