package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Disabled, given as a bind address, turns that server off.
const Disabled = "0"

// CertFiles are the files a certificate directory holds, as cert-manager
// writes them into a certificate Secret.
var CertFiles = []string{"tls.crt", "tls.key", "ca.crt"}

// SignalContext returns the process's one context: cancelled on the first
// SIGTERM or interrupt, which starts a clean shutdown. After that the
// default handling is back, so a second signal ends the process at once.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// ValidateBindAddress checks the host:port address of a server's flag;
// Disabled is allowed.
func ValidateBindAddress(flag, addr string) []error {
	if addr == Disabled {
		return nil
	}
	errs := ValidateHostPort(flag, addr)
	for i, err := range errs {
		errs[i] = fmt.Errorf("%w (%q turns the server off)", err, Disabled)
	}
	return errs
}

// ValidateHostPort checks a host:port address: a port from 0 to 65535 and,
// if there is a host, an IP address or a DNS name.
func ValidateHostPort(flag, addr string) []error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []error{fmt.Errorf("%s %q is not a host:port address: %w", flag, addr, err)}
	}
	var errs []error
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", flag, addr, port))
	}
	if host != "" && net.ParseIP(host) == nil {
		if msgs := validation.IsDNS1123Subdomain(strings.ToLower(host)); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: host %q is neither an IP address nor a host name", flag, addr, host))
		}
	}
	return errs
}

// ValidateCertDir checks that dir (the --cert-dir flag) holds readable
// CertFiles; their content is checked when they are loaded. need says what
// needs them, for the messages.
func ValidateCertDir(dir, need string) []error {
	if dir == "" {
		return []error{errors.New("--cert-dir must not be empty: " + need)}
	}
	var errs []error
	for _, name := range CertFiles {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--cert-dir: cannot read %s (%s): %w", p, need, err))
			continue
		}
		_ = f.Close()
	}
	return errs
}

// KubeConfig loads the Kubernetes client configuration: the kubeconfig
// file when one is given, else the KUBECONFIG environment variable, else
// the in-cluster configuration of the pod's ServiceAccount; with the
// client-side limits qps and burst and the User-Agent userAgent.
func KubeConfig(kubeconfig string, qps float32, burst int, userAgent string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	kube, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if kubeconfig != "" {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", kubeconfig, err)
		}
		return nil, fmt.Errorf("loading the Kubernetes client configuration (no --kubeconfig given, KUBECONFIG unset or unusable, and not in a pod): %w", err)
	}
	kube.QPS = qps
	kube.Burst = burst
	kube.UserAgent = userAgent
	return kube, nil
}
