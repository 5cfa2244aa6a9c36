package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/ebb-autoscaler/ebb/pkg/version"
	"github.com/ebb-autoscaler/ebb/services/webhook/app/options"
)

// NewCommand returns the ebb-webhook command.
func NewCommand() *cobra.Command {
	opts := options.NewOptions()
	var showVersion bool
	cmd := &cobra.Command{
		Use:          "ebb-webhook",
		Short:        "ebb's validating admission webhook for the keda.sh kinds, reading the cluster only through an uncached reader",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get())
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return Run(ctx, opts)
		},
	}

	fss := opts.Flags()
	fss.FlagSet("global").BoolVar(&showVersion, "version", false, "Print version information and exit.")
	fs := cmd.Flags()
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
	cliflag.SetUsageAndHelpFunc(cmd, fss, 0)
	return cmd
}

// signalContext returns the process's one context: cancelled on the first
// SIGTERM or interrupt, which starts a clean shutdown. After that the
// default handling is back, so a second signal ends the process at once.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}
