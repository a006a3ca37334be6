package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/pipeline"
)

func newPipelinesAccountsCmd(a *App, store *string) *cobra.Command {
	return &cobra.Command{
		Use:   "accounts NAME",
		Short: "The accounts of a fleet pipeline (--accounts): standing, last job, worker, lag, errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.openService(cmd.Context(), *store, pipeline.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			accts, err := svc.Accounts(cmd.Context(), args[0])
			if err != nil {
				return a.pipelineErr(err)
			}
			if a.Format == "json" {
				if accts == nil {
					accts = []*pipeline.AccountStatus{}
				}
				return a.printJSON(accts)
			}
			tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCOUNT\tSTANDING\tPHASE\tSTATE\tWORKER\tATTEMPT\tLAG\tROWS\tREQUESTS\tERROR")
			for _, x := range accts {
				lag := "never synced"
				if x.LagSeconds >= 0 {
					lag = (time.Duration(x.LagSeconds) * time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", x.Label(), x.Standing, x.Phase, x.State, x.Worker, x.Attempt, lag, x.Rows, x.Requests, x.Error)
			}
			return tw.Flush()
		},
	}
}
