// Command ebb-metrics-apiserver is ebb's external.metrics.k8s.io server, answering each request from the operator over mTLS gRPC.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/ebb-autoscaler/ebb/services/metrics-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
