// Package validate holds the admission rules of the keda.sh kinds, one
// admission.Validator per kind: ScaledObject, ScaledJob,
// TriggerAuthentication and ClusterTriggerAuthentication.
//
// The rules are KEDA's (so a KEDA manifest is admitted or denied as KEDA
// would), plus the checks that need ebb's own parsers (pkg/scalers: an
// unknown trigger type or bad metadata is denied with the parser's
// message, its warnings become admission warnings) and a few denials of
// objects that can never work. docs/webhook.md lists them all.
//
// Rules that need the cluster read it through a Reader, which in the
// webhook is the uncached reader (pkg/uncached): every read is a direct
// request to the API server, so a Deployment created a moment before its
// ScaledObject is always seen. A read that fails is an internal error,
// never a "not found": the request is denied with code 500 and can be
// retried. Its LISTs, which look for conflicting HPAs and ScaledObjects,
// are consistent reads, so a conflicting object created a moment before
// the review is seen: no rule decides on a stale view.
//
// Static rules run first and every problem they find is reported at
// once; the reads of the cluster run only for an object that passes them.
// An UPDATE that leaves the spec (and the annotations the rules read)
// unchanged, such as the operator adding or removing its finalizer, or an
// UPDATE of an object being deleted, is admitted without any check: an
// object admitted once must never be stuck because the world changed
// around it.
package validate
