package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestInitialConditions(t *testing.T) {
	want := Conditions{
		{Type: ConditionReady, Status: metav1.ConditionUnknown},
		{Type: ConditionActive, Status: metav1.ConditionUnknown},
		{Type: ConditionFallback, Status: metav1.ConditionUnknown},
		{Type: ConditionPaused, Status: metav1.ConditionFalse},
	}
	got := InitialConditions()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("InitialConditions() (-want +got):\n%s", diff)
	}
	// Each call returns a list of its own.
	got[0].Status = metav1.ConditionTrue
	if InitialConditions()[0].Status != metav1.ConditionUnknown {
		t.Errorf("Changing a returned list changed the next one")
	}
}

func TestConditionsAreInitialized(t *testing.T) {
	tests := map[string]struct {
		conditions Conditions
		want       bool
	}{
		"nil":     {conditions: nil, want: false},
		"empty":   {conditions: Conditions{}, want: false},
		"initial": {conditions: InitialConditions(), want: true},
		"missing Paused": {conditions: Conditions{
			{Type: ConditionReady, Status: metav1.ConditionTrue},
			{Type: ConditionActive, Status: metav1.ConditionTrue},
			{Type: ConditionFallback, Status: metav1.ConditionFalse},
		}, want: false},
		"any order, with HPAActive": {conditions: Conditions{
			{Type: ConditionHPAActive, Status: metav1.ConditionTrue},
			{Type: ConditionPaused, Status: metav1.ConditionFalse},
			{Type: ConditionFallback, Status: metav1.ConditionFalse},
			{Type: ConditionActive, Status: metav1.ConditionFalse},
			{Type: ConditionReady, Status: metav1.ConditionTrue},
		}, want: true},
		"HPAActive is not required": {conditions: InitialConditions(), want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.conditions.AreInitialized(); got != tc.want {
				t.Errorf("AreInitialized() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConditionsGet(t *testing.T) {
	conditions := Conditions{
		{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ScaledObjectReadyReason, Message: ScaledObjectReadyMessage},
		{Type: ConditionPaused, Status: metav1.ConditionFalse},
	}
	tests := map[string]struct {
		conditions Conditions
		typ        ConditionType
		want       Condition
		wantFound  bool
	}{
		"present": {
			conditions: conditions, typ: ConditionReady, wantFound: true,
			want: Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ScaledObjectReadyReason, Message: ScaledObjectReadyMessage},
		},
		"absent":   {conditions: conditions, typ: ConditionActive, want: Condition{}},
		"nil list": {conditions: nil, typ: ConditionReady, want: Condition{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, found := tc.conditions.Get(tc.typ)
			if found != tc.wantFound {
				t.Errorf("found = %v, want %v", found, tc.wantFound)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Get(%s) (-want +got):\n%s", tc.typ, diff)
			}
		})
	}
}

func TestConditionsAccessors(t *testing.T) {
	conditions := Conditions{
		{Type: ConditionReady, Status: metav1.ConditionTrue},
		{Type: ConditionActive, Status: metav1.ConditionFalse},
		{Type: ConditionFallback, Status: metav1.ConditionUnknown},
	}
	tests := map[string]struct {
		got                           Condition
		wantTrue, wantFalse, wantUnkn bool
	}{
		"Ready is True":      {got: conditions.Ready(), wantTrue: true},
		"Active is False":    {got: conditions.Active(), wantFalse: true},
		"Fallback Unknown":   {got: conditions.Fallback(), wantUnkn: true},
		"Paused absent":      {got: conditions.Paused(), wantUnkn: true},
		"zero value Unknown": {got: Condition{}, wantUnkn: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.got.IsTrue() != tc.wantTrue || tc.got.IsFalse() != tc.wantFalse || tc.got.IsUnknown() != tc.wantUnkn {
				t.Errorf("IsTrue/IsFalse/IsUnknown = %v/%v/%v, want %v/%v/%v",
					tc.got.IsTrue(), tc.got.IsFalse(), tc.got.IsUnknown(), tc.wantTrue, tc.wantFalse, tc.wantUnkn)
			}
		})
	}
}

func TestConditionsSet(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason, message string) Condition {
		return Condition{Type: ConditionReady, Status: status, Reason: reason, Message: message}
	}
	initialWith := func(replace ...Condition) Conditions {
		c := InitialConditions()
		for _, r := range replace {
			for i := range c {
				if c[i].Type == r.Type {
					c[i] = r
				}
			}
		}
		return c
	}
	tests := map[string]struct {
		start       Conditions
		typ         ConditionType
		status      metav1.ConditionStatus
		reason, msg string
		want        Conditions
		wantChanged bool
	}{
		"nil list is initialised first": {
			start: nil, typ: ConditionReady, status: metav1.ConditionTrue, reason: ScaledObjectReadyReason, msg: ScaledObjectReadyMessage,
			want:        initialWith(ready(metav1.ConditionTrue, ScaledObjectReadyReason, ScaledObjectReadyMessage)),
			wantChanged: true,
		},
		"initialising alone is a change": {
			start: nil, typ: ConditionPaused, status: metav1.ConditionFalse,
			want:        InitialConditions(),
			wantChanged: true,
		},
		"update in place keeps order": {
			start: InitialConditions(), typ: ConditionActive, status: metav1.ConditionTrue, reason: "ScalerActive", msg: "Scaling is performed because triggers are active",
			want: initialWith(Condition{Type: ConditionActive, Status: metav1.ConditionTrue, Reason: "ScalerActive",
				Message: "Scaling is performed because triggers are active"}),
			wantChanged: true,
		},
		"same values are not a change": {
			start: initialWith(ready(metav1.ConditionTrue, ScaledObjectReadyReason, ScaledObjectReadyMessage)),
			typ:   ConditionReady, status: metav1.ConditionTrue, reason: ScaledObjectReadyReason, msg: ScaledObjectReadyMessage,
			want:        initialWith(ready(metav1.ConditionTrue, ScaledObjectReadyReason, ScaledObjectReadyMessage)),
			wantChanged: false,
		},
		"a new message is a change": {
			start: initialWith(ready(metav1.ConditionFalse, "ScaledObjectCheckFailed", "old")),
			typ:   ConditionReady, status: metav1.ConditionFalse, reason: "ScaledObjectCheckFailed", msg: "new",
			want:        initialWith(ready(metav1.ConditionFalse, "ScaledObjectCheckFailed", "new")),
			wantChanged: true,
		},
		"absent type is appended": {
			start: InitialConditions(), typ: ConditionHPAActive, status: metav1.ConditionTrue, reason: HPAActiveReason,
			want:        append(InitialConditions(), Condition{Type: ConditionHPAActive, Status: metav1.ConditionTrue, Reason: HPAActiveReason}),
			wantChanged: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := tc.start
			changed := c.Set(tc.typ, tc.status, tc.reason, tc.msg)
			if changed != tc.wantChanged {
				t.Errorf("Set() = %v, want %v", changed, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.want, c); diff != "" {
				t.Errorf("Conditions after Set (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConditionsRemove(t *testing.T) {
	withHPA := append(InitialConditions(), Condition{Type: ConditionHPAActive, Status: metav1.ConditionFalse})
	tests := map[string]struct {
		start       Conditions
		typ         ConditionType
		want        Conditions
		wantRemoved bool
	}{
		"last":   {start: withHPA, typ: ConditionHPAActive, want: InitialConditions(), wantRemoved: true},
		"first":  {start: InitialConditions(), typ: ConditionReady, want: InitialConditions()[1:], wantRemoved: true},
		"middle": {start: InitialConditions(), typ: ConditionActive, want: Conditions{InitialConditions()[0], InitialConditions()[2], InitialConditions()[3]}, wantRemoved: true},
		"absent": {start: InitialConditions(), typ: ConditionHPAActive, want: InitialConditions()},
		"nil":    {start: nil, typ: ConditionReady, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := append(Conditions(nil), tc.start...)
			if tc.start == nil {
				c = nil
			}
			if removed := c.Remove(tc.typ); removed != tc.wantRemoved {
				t.Errorf("Remove() = %v, want %v", removed, tc.wantRemoved)
			}
			if diff := cmp.Diff(tc.want, c); diff != "" {
				t.Errorf("Conditions after Remove (-want +got):\n%s", diff)
			}
		})
	}
}
