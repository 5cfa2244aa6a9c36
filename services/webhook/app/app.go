// Package app wires the ebb-webhook command.
package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ebb-autoscaler/ebb/pkg/version"
)

// NewCommand returns the ebb-webhook command.
func NewCommand() *cobra.Command {
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
			return fmt.Errorf("ebb-webhook %s does not serve yet: its server is built in a later release", version.Get().GitVersion)
		},
	}
	cmd.Flags().BoolVar(&showVersion, "version", false, "Print version information and exit.")
	return cmd
}
