// Command ebb-webhook is ebb's validating admission webhook for the keda.sh kinds, reading the cluster only through an uncached reader.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/ebb-autoscaler/ebb/services/webhook/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
