package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionType names a status condition of a ScaledObject or ScaledJob.
type ConditionType string

// Condition is one entry of a ScaledObject's or ScaledJob's
// status.conditions. Unlike metav1.Condition it carries no timestamps or
// observed generation: its shape is KEDA's.
type Condition struct {
	// Type of the condition, such as Ready.
	// +required
	Type ConditionType `json:"type"`
	// Status is True, False or Unknown.
	// +required
	Status metav1.ConditionStatus `json:"status"`
	// Reason is a CamelCase word explaining the status.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message explains the status to a human.
	// +optional
	Message string `json:"message,omitempty"`
}

// IsTrue reports whether the condition's status is True.
func (c Condition) IsTrue() bool { return c.Status == metav1.ConditionTrue }

// IsFalse reports whether the condition's status is False.
func (c Condition) IsFalse() bool { return c.Status == metav1.ConditionFalse }

// IsUnknown reports whether the condition's status is Unknown or unset.
func (c Condition) IsUnknown() bool {
	return c.Status == metav1.ConditionUnknown || c.Status == ""
}

// Conditions is the status.conditions list, at most one entry per type.
type Conditions []Condition

// initialConditions lists the conditions every ScaledObject and ScaledJob
// carries from its first reconcile, in the order they are shown.
var initialConditions = []Condition{
	{Type: ConditionReady, Status: metav1.ConditionUnknown},
	{Type: ConditionActive, Status: metav1.ConditionUnknown},
	{Type: ConditionFallback, Status: metav1.ConditionUnknown},
	{Type: ConditionPaused, Status: metav1.ConditionFalse},
}

// InitialConditions returns a new list with Ready, Active and Fallback
// Unknown and Paused False, the state before the first reconcile.
func InitialConditions() Conditions {
	return append(Conditions(nil), initialConditions...)
}

// AreInitialized reports whether Ready, Active, Fallback and Paused are all
// present. HPAActive, which only ScaledObjects with an HPA carry, is not
// required.
func (c Conditions) AreInitialized() bool {
	for _, want := range initialConditions {
		if _, ok := c.Get(want.Type); !ok {
			return false
		}
	}
	return true
}

// Get returns the condition of the given type and whether it is present. A
// missing condition is returned as the zero Condition, whose IsUnknown is
// true.
func (c Conditions) Get(t ConditionType) (Condition, bool) {
	for _, cond := range c {
		if cond.Type == t {
			return cond, true
		}
	}
	return Condition{}, false
}

// Set records status, reason and message for the condition of the given
// type, adding it if absent. An empty list is first filled with the initial
// conditions, so the usual four are always shown. It reports whether
// anything changed, so callers can skip a status write.
func (c *Conditions) Set(t ConditionType, status metav1.ConditionStatus, reason, message string) bool {
	changed := false
	if len(*c) == 0 {
		*c = InitialConditions()
		changed = true
	}
	want := Condition{Type: t, Status: status, Reason: reason, Message: message}
	for i := range *c {
		if (*c)[i].Type == t {
			if (*c)[i] == want {
				return changed
			}
			(*c)[i] = want
			return true
		}
	}
	*c = append(*c, want)
	return true
}

// Remove deletes the condition of the given type and reports whether it was
// present.
func (c *Conditions) Remove(t ConditionType) bool {
	for i := range *c {
		if (*c)[i].Type == t {
			*c = append((*c)[:i], (*c)[i+1:]...)
			return true
		}
	}
	return false
}

// Ready returns the Ready condition.
func (c Conditions) Ready() Condition { cond, _ := c.Get(ConditionReady); return cond }

// Active returns the Active condition.
func (c Conditions) Active() Condition { cond, _ := c.Get(ConditionActive); return cond }

// Fallback returns the Fallback condition.
func (c Conditions) Fallback() Condition { cond, _ := c.Get(ConditionFallback); return cond }

// Paused returns the Paused condition.
func (c Conditions) Paused() Condition { cond, _ := c.Get(ConditionPaused); return cond }
