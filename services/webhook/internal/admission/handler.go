package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
)

// The paths of the validators, KEDA's, so a ValidatingWebhookConfiguration
// written for KEDA's webhook works unchanged.
const (
	ScaledObjectPath                 = "/validate-keda-sh-v1alpha1-scaledobject"
	ScaledJobPath                    = "/validate-keda-sh-v1alpha1-scaledjob"
	TriggerAuthenticationPath        = "/validate-keda-sh-v1alpha1-triggerauthentication"
	ClusterTriggerAuthenticationPath = "/validate-keda-sh-v1alpha1-clustertriggerauthentication"
)

// MaxRequestBytes bounds the body of an admission request. The API server
// stores objects of at most 1.5 MiB; an UPDATE review carries the object
// twice plus its envelope.
const MaxRequestBytes = 7 << 20

// Bounds of the time one admission may take. The API server sends its
// timeout for the call as the "timeout" query parameter; without it
// DefaultTimeout applies, and no request gets more than MaxTimeout.
const (
	DefaultTimeout = 10 * time.Second
	MaxTimeout     = 30 * time.Second
)

var reviewGVK = admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")

// Route binds a Validator to its path and to the resource it validates.
type Route struct {
	// Path is the URL path the ValidatingWebhookConfiguration calls.
	Path string
	// Kind names the objects, in messages and metrics.
	Kind string
	// Resource is the group and resource the Validator handles; a request
	// for another resource is denied, as a misconfigured webhook.
	Resource schema.GroupResource
	// Validator decides.
	Validator Validator
}

// NewHandler returns the admission server's handler: one route per
// Validator, 404 elsewhere. Decisions are counted in m.
func NewHandler(routes []Route, m *Metrics, logger klog.Logger) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.Path, &handler{route: r, metrics: m, logger: logger.WithValues("kind", r.Kind)})
	}
	return mux
}

// handler serves one Route.
type handler struct {
	route   Route
	metrics *Metrics
	logger  klog.Logger
}

// The result label values of the admission metrics.
const (
	resultAllowed    = "allowed"
	resultDenied     = "denied"
	resultError      = "error"
	resultBadRequest = "bad_request"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	review, status, msg := h.readReview(w, r)
	if review == nil {
		h.metrics.observe(h.route.Kind, "", resultBadRequest, 0, time.Since(start))
		h.logger.V(2).Info("Rejected a malformed admission request", "remoteAddr", r.RemoteAddr, "status", status, "reason", msg)
		http.Error(w, msg, status)
		return
	}
	req := review.Request
	logger := h.logger.WithValues("uid", req.UID, "operation", req.Operation, "namespace", req.Namespace, "name", req.Name)
	ctx, cancel := context.WithTimeout(klog.NewContext(r.Context(), logger), requestTimeout(r))
	defer cancel()

	resp := h.decide(ctx, req)
	resp.UID = req.UID

	result := resultAllowed
	switch {
	case resp.Allowed:
	case resp.Result != nil && resp.Result.Code >= http.StatusInternalServerError:
		result = resultError
	case resp.Result != nil && resp.Result.Code == http.StatusBadRequest:
		result = resultBadRequest
	default:
		result = resultDenied
	}
	elapsed := time.Since(start)
	h.metrics.observe(h.route.Kind, string(req.Operation), result, len(resp.Warnings), elapsed)
	switch result {
	case resultAllowed:
		logger.V(3).Info("Admitted", "warnings", len(resp.Warnings), "dryRun", ptrTrue(req.DryRun), "duration", elapsed)
	case resultError:
		logger.Error(nil, "Could not decide on an admission request", "message", resp.Result.Message, "duration", elapsed)
	default:
		logger.V(1).Info("Denied", "message", resp.Result.Message, "dryRun", ptrTrue(req.DryRun), "duration", elapsed)
	}

	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: reviewGVK.GroupVersion().String(), Kind: reviewGVK.Kind},
		Response: resp,
	}
	body, err := json.Marshal(out)
	if err != nil {
		// Not reachable with the types above; never leave the API server
		// without an answer.
		logger.Error(err, "Encoding the AdmissionReview response")
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(body); err != nil {
		logger.V(2).Info("Writing the AdmissionReview response", "err", err)
	}
}

// readReview reads and checks the AdmissionReview of r. On failure it
// returns nil with the HTTP status and message to answer with.
func (h *handler) readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, int, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: admission requests are POSTed", r.Method)
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q not supported: send an admission.k8s.io/v1 AdmissionReview as application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes)
		}
		return nil, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, http.StatusBadRequest, fmt.Sprintf("the request body is not a JSON AdmissionReview: %v", err)
	}
	if gvk := review.GroupVersionKind(); gvk != reviewGVK {
		return nil, http.StatusBadRequest, fmt.Sprintf("want an admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q (the webhook speaks admissionReviewVersions [v1] only)",
			review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, "the AdmissionReview has no request"
	}
	if review.Request.UID == "" {
		return nil, http.StatusBadRequest, "the AdmissionReview request has no uid"
	}
	return &review, 0, ""
}

// decide runs the Validator on req and turns its outcome into a response
// (without the UID). A panic in the Validator is an internal error.
func (h *handler) decide(ctx context.Context, req *admissionv1.AdmissionRequest) (resp *admissionv1.AdmissionResponse) {
	if gr := (schema.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}); gr != h.route.Resource {
		return deny(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("%s validates %s, not %s: check the rules of the ValidatingWebhookConfiguration", h.route.Path, h.route.Resource, gr))
	}
	if req.SubResource != "" {
		// Status and other subresources carry nothing the rules check.
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	default:
		return &admissionv1.AdmissionResponse{Allowed: true}
	}

	defer func() {
		if p := recover(); p != nil {
			klog.FromContext(ctx).Error(nil, "Validator panicked", "panic", p, "stack", string(debug.Stack()))
			resp = deny(http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("internal error while validating %s %q; this is a bug in ebb's webhook", h.route.Kind, req.Name))
		}
	}()
	warnings, err := h.route.Validator.Validate(ctx, req)
	var denial *Denial
	var bad *BadObjectError
	switch {
	case err == nil:
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
	case errors.As(err, &denial):
		return &admissionv1.AdmissionResponse{Allowed: false, Result: denial.status(h.route.Resource.Group), Warnings: warnings}
	case errors.As(err, &bad):
		resp := deny(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		resp.Warnings = warnings
		return resp
	default:
		msg := fmt.Sprintf("could not validate %s %q, try again: %v", h.route.Kind, req.Name, err)
		if ctx.Err() != nil {
			msg = fmt.Sprintf("could not validate %s %q in time, try again: %v", h.route.Kind, req.Name, err)
		}
		resp := deny(http.StatusInternalServerError, metav1.StatusReasonInternalError, msg)
		resp.Warnings = warnings
		return resp
	}
}

func deny(code int32, reason metav1.StatusReason, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg},
	}
}

// requestTimeout is the API server's timeout for this call (the "timeout"
// query parameter it adds to webhook URLs), bounded by MaxTimeout;
// DefaultTimeout without one.
func requestTimeout(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || d <= 0 {
		return DefaultTimeout
	}
	return min(d, MaxTimeout)
}

func ptrTrue(b *bool) bool { return b != nil && *b }
