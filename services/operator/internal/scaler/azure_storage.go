package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// azureStorage is what the azure-queue and azure-blob scalers share: the
// SDK client options over the operator's HTTP client, error reporting
// without the connection string's secrets, and the closed flag.
type azureStorage struct {
	triggerType string
	source      string // the queue or container URL, redacted
	redact      redactor
	closed      atomic.Bool
}

func newAzureStorage(triggerType string, st scalers.AzureStorage, resource string) *azureStorage {
	a := &azureStorage{triggerType: triggerType}
	secrets := []string{string(st.Connection)}
	for _, part := range strings.Split(string(st.Connection), ";") {
		if k, v, ok := strings.Cut(part, "="); ok && (k == "AccountKey" || k == "SharedAccessSignature") && v != "" {
			secrets = append(secrets, v)
			// A signature's own sig parameter, as a URL would carry it.
			if q, err := url.ParseQuery(v); err == nil && q.Get("sig") != "" {
				secrets = append(secrets, q.Get("sig"))
			}
		}
	}
	a.redact = newRedactor(secrets...)
	a.source = redactURL(st.ServiceURL + url.PathEscape(resource))
	return a
}

// clientOptions are the SDK's options: the operator's HTTP client (its
// timeout is the global HTTP timeout, as KEDA's), and no retries within a
// poll, since the operator polls again at the next interval.
func (a *azureStorage) clientOptions(deps Deps) azcore.ClientOptions {
	return azcore.ClientOptions{
		Transport: deps.HTTPClient,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// sdkError classifies an error of the Azure SDK: the caller's context
// ending, an error status from the service (bad response, with its error
// code), a timeout, or an unreachable service. The SDK's own error text
// (which shows the request URL, shared access signature included) is not
// used for answers from the service.
func (a *azureStorage) sdkError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := a.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	var respErr *azcore.ResponseError
	if errors.As(err, &respErr) {
		code := respErr.ErrorCode
		if code == "" {
			code = "no error code"
		}
		return a.errorf(ErrBadResponse, "%s: HTTP status %d (%s)", what, respErr.StatusCode, code)
	}
	// A transport error of the HTTP client: always a *url.Error, whose
	// URL (with a shared access signature) is dropped.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		inner := uerr.Err
		var timeout interface{ Timeout() bool }
		if errors.Is(inner, context.DeadlineExceeded) || (errors.As(inner, &timeout) && timeout.Timeout()) {
			return a.errorf(ErrTimeout, "%s: no answer in time", what)
		}
		return a.errorf(ErrUnreachable, "%s: %v", what, inner)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return a.errorf(ErrUnreachable, "%s: %v", what, err)
	}
	// Anything else (a body the SDK cannot read, for one) came from the
	// service's side of the exchange.
	return a.errorf(ErrBadResponse, "%s: %v", what, err)
}

func (a *azureStorage) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = a.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: a.triggerType, Source: a.source, Kind: kind, Detail: detail}
}

// close marks the scaler closed; the SDK clients hold nothing of their
// own (the HTTP client is the operator's). It reports whether this call
// closed it.
func (a *azureStorage) close() bool { return !a.closed.Swap(true) }
