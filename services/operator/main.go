// Command ebb-operator is ebb's operator: reconciles ScaledObjects and ScaledJobs, owns their HPAs, runs the scalers and serves metric values over mTLS gRPC.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/ebb-autoscaler/ebb/services/operator/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
