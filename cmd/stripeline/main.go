// Command stripeline replicates a Stripe account and operates on it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/stripeline/stripeline/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.ProcessEnv())
	stop()
	os.Exit(code)
}
