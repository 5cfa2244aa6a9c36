// Package hpa builds the HorizontalPodAutoscaler ebb manages for a
// ScaledObject, with the same shape KEDA gives it, so a manifest moved from
// KEDA yields the same HPA.
package hpa
