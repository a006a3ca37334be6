package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/catalog"
)

func newVersionCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print stripeline's version and the Stripe API version it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.Format == "json" {
				return a.printJSON(map[string]string{"version": Version, "stripe_api_version": catalog.SpecVersion(), "go": runtime.Version()})
			}
			fmt.Fprintf(a.Stdout, "stripeline %s (Stripe API %s, %s)\n", Version, catalog.SpecVersion(), runtime.Version())
			return nil
		},
	}
}
