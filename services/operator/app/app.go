// Package app wires the ebb-operator command.
package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ebb-autoscaler/ebb/pkg/version"
)

// NewCommand returns the ebb-operator command.
func NewCommand() *cobra.Command {
	var showVersion bool
	cmd := &cobra.Command{
		Use:          "ebb-operator",
		Short:        "ebb's operator: reconciles ScaledObjects and ScaledJobs, owns their HPAs, runs the scalers and serves metric values over mTLS gRPC",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get())
				return err
			}
			return fmt.Errorf("ebb-operator %s does not serve yet: its server is built in a later release", version.Get().GitVersion)
		},
	}
	cmd.Flags().BoolVar(&showVersion, "version", false, "Print version information and exit.")
	return cmd
}
