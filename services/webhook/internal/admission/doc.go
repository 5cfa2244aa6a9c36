// Package admission is ebb's validating admission server: a plain net/http
// handler that decodes admission.k8s.io/v1 AdmissionReviews, hands each
// request to the Validator of its kind, and answers with the request's UID,
// the decision, a message a person can act on, and warnings.
//
// The Handler never panics on what it is sent: a body that is too large,
// is not JSON, is not an admission.k8s.io/v1 AdmissionReview or carries
// no request UID is answered with a plain-text 400 (413 for the size, 405
// and 415 for the method and the content type), which the API server
// treats as a failed webhook call. Everything it can answer with a UID it
// answers with an AdmissionReview: a broken rule is a 422 Invalid denial
// listing every problem found, an object it cannot decode a 400, and a
// failure to read the cluster a 500, so a transient error is never
// mistaken for a verdict on the object.
//
// The webhook has no side effects (its ValidatingWebhookConfiguration
// says sideEffects: None), so dry-run requests are validated like any
// other.
package admission
