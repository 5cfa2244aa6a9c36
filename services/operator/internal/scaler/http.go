package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// maxBodyBytes bounds what an HTTP scaler reads of a response.
const maxBodyBytes = 8 << 20

// httpSource is the HTTP side shared by the metrics-api and prometheus
// scalers: a client (the operator's shared one, or one with its own
// transport when the trigger has TLS settings), the trigger's
// authentication, and error reporting without secrets.
type httpSource struct {
	triggerType string
	address     string // redacted, for errors
	client      *http.Client
	own         *http.Transport // non-nil when the client is the scaler's own
	auth        *scalers.HTTPAuth
	timeout     time.Duration // per request, on top of the client's; 0 for none
	redact      redactor
	closed      atomic.Bool
}

func newHTTPSource(triggerType, rawURL string, auth *scalers.HTTPAuth, unsafeSSL bool, timeout time.Duration, deps Deps) (*httpSource, error) {
	if auth == nil {
		auth = &scalers.HTTPAuth{}
	}
	s := &httpSource{
		triggerType: triggerType,
		address:     redactURL(rawURL),
		auth:        auth,
		timeout:     timeout,
		redact: newRedactor(string(auth.BearerToken), string(auth.Password), string(auth.APIKey),
			string(auth.CustomAuthValue), string(auth.ClientSecret), string(auth.Key), string(auth.Cert)),
	}
	if u, err := url.Parse(rawURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, s.errorf(ErrInvalidConfig, "the address must be an http or https URL")
	} else if p, ok := u.User.Password(); ok {
		s.redact = newRedactor(append(s.redact.secrets, p)...)
	}
	if auth.Password != "" {
		// What a server echoing the Authorization header would show.
		s.redact = newRedactor(append(s.redact.secrets, base64.StdEncoding.EncodeToString([]byte(auth.Username+":"+string(auth.Password))))...)
	}
	if auth.Enabled(scalers.AuthModeOAuth) {
		return nil, s.errorf(ErrNotImplemented, "authMode oauth is not supported by ebb yet")
	}
	needTLS := unsafeSSL || auth.Enabled(scalers.AuthModeTLS) || auth.CA != ""
	if !needTLS {
		s.client = deps.HTTPClient
		return s, nil
	}
	tlsConfig, err := s.tlsConfig(unsafeSSL)
	if err != nil {
		return nil, err
	}
	var t *http.Transport
	if base, ok := deps.HTTPClient.Transport.(*http.Transport); ok {
		t = base.Clone()
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	t.TLSClientConfig = tlsConfig
	s.own = t
	s.client = &http.Client{Transport: t, Timeout: deps.HTTPClient.Timeout, CheckRedirect: deps.HTTPClient.CheckRedirect}
	return s, nil
}

// tlsConfig builds the client TLS settings: the client certificate of
// authMode tls, the CA (accepted without authMode tls, as KEDA does), and
// unsafeSsl.
func (s *httpSource) tlsConfig(unsafeSSL bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: unsafeSSL} //nolint:gosec // unsafeSsl is the user's explicit choice
	if s.auth.Enabled(scalers.AuthModeTLS) {
		cert, err := tls.X509KeyPair([]byte(s.auth.Cert), []byte(s.auth.Key))
		if err != nil {
			// The parse error may quote PEM content: do not include it.
			return nil, s.errorf(ErrInvalidConfig, "cert and key of authMode tls are not a valid PEM certificate and key pair")
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if s.auth.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.auth.CA)) {
			return nil, s.errorf(ErrInvalidConfig, "ca holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	return c, nil
}

// applyAuth adds the trigger's credentials to req (apiKey in a header or
// the query, basic, bearer, custom header), as KEDA does.
func (s *httpSource) applyAuth(req *http.Request) {
	a := s.auth
	if a.Enabled(scalers.AuthModeAPIKey) {
		if a.Method == "query" {
			name := a.KeyParamName
			if name == "" {
				name = "api_key"
			}
			q := req.URL.Query()
			q.Set(name, string(a.APIKey))
			req.URL.RawQuery = q.Encode()
		} else {
			name := a.KeyParamName
			if name == "" {
				name = "X-API-KEY"
			}
			req.Header.Set(name, string(a.APIKey))
		}
	}
	if a.Enabled(scalers.AuthModeBasic) {
		req.SetBasicAuth(a.Username, string(a.Password))
	}
	if a.Enabled(scalers.AuthModeBearer) {
		req.Header.Set("Authorization", "Bearer "+string(a.BearerToken))
	}
	if a.Enabled(scalers.AuthModeCustom) {
		req.Header.Set(a.CustomAuthHeader, string(a.CustomAuthValue))
	}
}

// pollTimeout is the bound of one request: the shorter of the per-request
// timeout and the client's timeout (0 when neither is set).
func (s *httpSource) pollTimeout() time.Duration {
	d := s.timeout
	if c := s.client.Timeout; c > 0 && (d == 0 || c < d) {
		d = c
	}
	return d
}

// get sends a GET to rawURL with the trigger's authentication and extra
// headers and returns the body of a 2xx answer.
func (s *httpSource) get(ctx context.Context, rawURL string, headers map[string]string) ([]byte, error) {
	if s.closed.Load() {
		return nil, s.errorf(ErrClosed, "")
	}
	reqCtx := ctx
	if s.timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "cannot build the request")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	s.applyAuth(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.transportError(ctx, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, s.transportError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, s.errorf(ErrBadResponse, "HTTP status %d%s", resp.StatusCode, bodySnippet(body))
	}
	return body, nil
}

// transportError classifies an error of http.Client.Do or of reading the
// body: the caller's context ending, a timeout, or an unreachable source.
// The *url.Error's URL (which may hold an API key) is dropped.
func (s *httpSource) transportError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var timeout interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &timeout) && timeout.Timeout()) {
		limit := s.timeout
		if limit == 0 {
			limit = s.client.Timeout
		}
		return s.errorf(ErrTimeout, "no answer within %s", limit)
	}
	return s.errorf(ErrUnreachable, "%v", err)
}

func (s *httpSource) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.triggerType, Source: s.address, Kind: kind, Detail: detail}
}

func (s *httpSource) close() {
	if s.closed.Swap(true) {
		return
	}
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
}

// bodySnippet is the start of an error body, for error messages.
func bodySnippet(body []byte) string {
	const max = 256
	b := strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
	if b == "" {
		return ""
	}
	if len(b) > max {
		b = b[:max] + "..."
	}
	return ": " + b
}
