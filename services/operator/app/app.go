package app

import (
	"fmt"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"
	"github.com/ebb-autoscaler/ebb/pkg/version"
	"github.com/ebb-autoscaler/ebb/services/operator/app/options"
)

// NewCommand returns the ebb-operator command.
func NewCommand() *cobra.Command {
	opts := options.NewOptions()
	var showVersion bool
	cmd := &cobra.Command{
		Use: "ebb-operator",
		Short: "ebb's operator: reconciles ScaledObjects and ScaledJobs, owns their HPAs, " +
			"runs the scalers and serves metric values over mTLS gRPC",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get())
				return err
			}
			ctx, stop := cmdutil.SignalContext(cmd.Context())
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
