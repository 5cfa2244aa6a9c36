package scaler

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// cronScaler is active from start (inclusive) to end (exclusive) in the
// trigger's time zone. It does no I/O.
type cronScaler struct {
	cfg      *scalers.CronConfig
	clock    clock.PassiveClock
	active   resource.Quantity
	inactive resource.Quantity
}

func newCron(c *scalers.CronConfig, deps Deps) (*cronScaler, error) {
	if c.Location == nil {
		return nil, &Error{Type: c.Type(), Kind: ErrInvalidConfig, Detail: fmt.Sprintf("timezone %q is not a known time zone", c.Timezone)}
	}
	if c.StartSchedule == nil || c.EndSchedule == nil {
		return nil, &Error{Type: c.Type(), Kind: ErrInvalidConfig, Detail: "start and end schedules are required"}
	}
	return &cronScaler{
		cfg:    c,
		clock:  deps.Clock,
		active: *resource.NewQuantity(c.DesiredReplicas, resource.DecimalSI),
		// As KEDA: outside the window the metric is 1 (with the target of
		// 1 the HPA then wants one replica, and the scale loop scales to
		// zero or idle on inactivity).
		inactive: *resource.NewQuantity(1, resource.DecimalSI),
	}, nil
}

// Poll decides activity as KEDA does: with the next start and the next end
// both strictly after now, the window is open when the next end comes no
// later than the next start. So at exactly the start instant the trigger is
// active, at exactly the end instant it is not, and windows crossing
// midnight (start 22:00, end 06:00) need nothing special.
func (s *cronScaler) Poll(context.Context) (Reading, error) {
	now := s.clock.Now().In(s.cfg.Location)
	nextStart := s.cfg.StartSchedule.Next(now)
	nextEnd := s.cfg.EndSchedule.Next(now)
	if !nextStart.Before(nextEnd) {
		return Reading{Value: s.active.DeepCopy(), Active: true}, nil
	}
	return Reading{Value: s.inactive.DeepCopy(), Active: false}, nil
}

// Close does nothing: a cron trigger holds no connection.
func (s *cronScaler) Close() error { return nil }
