package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
)

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
	client, err := a.Client(pipeline.CheckClientConfig)
	if err != nil {
		return err
	}
	r, err := pipeline.Check(ctx, client)
	if err != nil {
		return err
	}
	if a.Format == "json" {
		return a.printJSON(r)
	}
	return a.printCheck(r)
}

func (a *App) printCheck(r *pipeline.CheckReport) error {
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
