package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/webhook"
)

func newWebhooksCmd(a *App) *cobra.Command {
	var store, name string
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "A pipeline's live path: register its webhook endpoint on Stripe, rotate secrets, show deliveries",
		Long: `Stripe delivers every change of the account as a signed webhook to POST /webhooks/NAME on
"stripeline serve" (or "stripeline listen --pipeline NAME"): each is verified against the
pipeline's signing secrets and applied at once; the pipeline's scheduled events sweep repairs
whatever did not arrive. Webhooks need a SQL destination (sqlite://, postgres://, mysql://).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&store, "store", "", "control store URL (env STRIPELINE_STORE; default "+defaultStore+")")
	cmd.PersistentFlags().StringVar(&name, "pipeline", "", "the pipeline (required)")
	cmd.AddCommand(newWebhooksSetupCmd(a, &store, &name), newWebhooksSecretCmd(a, &store, &name, true),
		newWebhooksSecretCmd(a, &store, &name, false), newWebhooksStatusCmd(a, &store, &name))
	return cmd
}

func needPipeline(name string) error {
	if name == "" {
		return usagef("--pipeline: name the pipeline (stripeline pipelines list shows them)")
	}
	return nil
}

// webhookErr names the flag of a setting the service refused.
func (a *App) webhookErr(err error) error {
	var fe *pipeline.FieldError
	if errors.As(err, &fe) {
		flag := map[string]string{"url": "--url", "tolerance": "--tolerance", "secret": "stdin", "refetch": "--refetch"}[fe.Field]
		if flag != "" {
			return usagef("%s: %s", flag, strings.TrimPrefix(fe.Error(), fe.Field+": "))
		}
	}
	return a.pipelineErr(err)
}

func newWebhooksSetupCmd(a *App, store, name *string) *cobra.Command {
	var u string
	var tolerance time.Duration
	var refetch []string
	var replace bool
	cmd := &cobra.Command{
		Use:   "setup --pipeline NAME --url https://HOST/webhooks/NAME",
		Short: "Register a webhook endpoint on the account for exactly the event types the pipeline's streams need",
		Long: `setup creates a webhook endpoint on the pipeline's Stripe account (POST /v1/webhook_endpoints;
a Connect endpoint when the pipeline replicates a connected account) enabled for the event types
of the pipeline's streams, and stores its signing secret encrypted in the control store (key
file beside the store). Secrets kept before stay valid, so a second setup rotates without a gap;
--replace drops them.`,
		Example: `  stripeline webhooks setup --pipeline acme --url https://stripeline.example.com/webhooks/acme`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needPipeline(*name); err != nil {
				return err
			}
			if u == "" {
				return usagef("--url: give the address Stripe delivers to, https://HOST/webhooks/%s", *name)
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			eps, err := svc.SetupWebhook(cmd.Context(), *name, pipeline.WebhookSetup{URL: u, Tolerance: tolerance, Refetch: refetch, Replace: replace})
			if err != nil {
				return a.webhookErr(err)
			}
			for i := range eps {
				eps[i].Sealed = ""
			}
			if a.Format == "json" {
				return a.printJSON(eps)
			}
			for _, ep := range eps {
				kind := "account"
				if ep.Connect {
					kind = "connect"
				}
				fmt.Fprintf(a.Stdout, "endpoint %s (%s) → %s, %d event types, secret %s (stored encrypted)\n", ep.ID, kind, ep.URL, ep.EventTypes, ep.Hint)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&u, "url", "", "where Stripe delivers: https://HOST/webhooks/NAME (http only to this machine, for an emulator)")
	cmd.Flags().DurationVar(&tolerance, "tolerance", 0, "how old a signature's timestamp may be (default 300s, as Stripe's libraries)")
	cmd.Flags().StringSliceVar(&refetch, "refetch", nil, "streams whose events are applied with the object read again from Stripe rather than the event's copy")
	cmd.Flags().BoolVar(&replace, "replace", false, "drop the secrets kept so far (the end of a rotation)")
	return cmd
}

func newWebhooksSecretCmd(a *App, store, name *string, add bool) *cobra.Command {
	var last4 string
	use, short := "add-secret --pipeline NAME < secret", "Keep one more signing secret (read from stdin), e.g. one rolled in Stripe's dashboard"
	if !add {
		use, short = "remove-secret --pipeline NAME --last4 abcd", "Drop the signing secrets ending with these characters (the end of a rotation)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needPipeline(*name); err != nil {
				return err
			}
			if !add && len(last4) < 4 {
				return usagef("--last4: give the last four characters of the secret to drop (webhooks status shows them)")
			}
			var secret string
			if add {
				line, err := bufio.NewReader(a.Stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the secret from stdin: %w", err)
				}
				if secret = strings.TrimSpace(line); secret == "" {
					return usagef("stdin holds no secret: pipe it in, e.g. `printenv WHSEC | stripeline webhooks add-secret --pipeline NAME`")
				}
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			if add {
				ep, err := svc.AddWebhookSecret(cmd.Context(), *name, webhook.Secret(secret))
				if err != nil {
					return a.webhookErr(err)
				}
				fmt.Fprintf(a.Stdout, "secret %s stored encrypted for %s\n", ep.Hint, *name)
				return nil
			}
			n, err := svc.RemoveWebhookSecret(cmd.Context(), *name, last4)
			if err != nil {
				return a.webhookErr(err)
			}
			fmt.Fprintf(a.Stdout, "%d secret(s) dropped from %s\n", n, *name)
			return nil
		},
	}
	if !add {
		cmd.Flags().StringVar(&last4, "last4", "", "the last four characters of the secret to drop")
	}
	return cmd
}

func newWebhooksStatusCmd(a *App, store, name *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status --pipeline NAME",
		Short: "Show a pipeline's webhook endpoints, the events applied by webhook and by the sweep, and the lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needPipeline(*name); err != nil {
				return err
			}
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			st, err := svc.WebhookStatusOf(cmd.Context(), *name)
			if err != nil {
				return a.webhookErr(err)
			}
			if a.Format == "json" {
				return a.printJSON(st)
			}
			w := a.Stdout
			fmt.Fprintf(w, "pipeline   %s\ntolerance  %ds\n", st.Pipeline, st.Tolerance)
			if len(st.Refetch) > 0 {
				fmt.Fprintf(w, "refetch    %s\n", strings.Join(st.Refetch, ", "))
			}
			if len(st.Endpoints) == 0 {
				fmt.Fprintf(w, "endpoints  none: stripeline webhooks setup --pipeline %s --url https://…\n", st.Pipeline)
			}
			for _, ep := range st.Endpoints {
				id := ep.ID
				if id == "" {
					id = "(added by hand)"
				}
				state := ""
				if s, ok := st.Stripe[ep.ID]; ok {
					state = " [" + s + "]"
				}
				fmt.Fprintf(w, "endpoint   %s %s secret %s since %s%s\n", id, ep.URL, ep.Hint, ep.Created.Format(time.RFC3339), state)
			}
			if len(st.Events) == 0 {
				fmt.Fprintln(w, "events     none applied yet")
			}
			now := time.Now()
			for _, e := range st.Events {
				fmt.Fprintf(w, "%-10s %d events applied, newest created %s", e.Source, e.Count, time.Unix(e.LastCreated, 0).UTC().Format(time.RFC3339))
				if !e.LastApplied.IsZero() {
					fmt.Fprintf(w, ", last applied %s ago", now.Sub(e.LastApplied).Round(time.Second))
				}
				if e.LagMillis > 0 {
					fmt.Fprintf(w, ", mean lag %.0f ms (last hour; event created to rows durable, whole-second stamps)", e.LagMillis)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "refused and failed deliveries: see stripeline_webhook_deliveries_total on /metrics of the server that received them")
			return nil
		},
	}
}
