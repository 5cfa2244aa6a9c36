package app

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// eventsV1Recorder lets controllers written against record.EventRecorder
// emit events/v1 Events. The events/v1 broadcaster folds repeats of an
// Event into an EventSeries with one write per series interval, where the
// core/v1 broadcaster patches a counter on every repeat: with 10,000
// ScaledObjects a broken trigger shared by many of them would otherwise
// keep the API server busy. events/v1 wants an action as well as a reason;
// the reason, which names what happened in CamelCase, serves as both.
type eventsV1Recorder struct {
	rec events.EventRecorderLogger
}

var _ record.EventRecorderLogger = eventsV1Recorder{}

func (r eventsV1Recorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.rec.Eventf(object, nil, eventtype, reason, reason, "%s", message)
}

func (r eventsV1Recorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.rec.Eventf(object, nil, eventtype, reason, reason, messageFmt, args...)
}

// AnnotatedEventf keeps the annotations when the recorder can (client-go's
// can) and drops them otherwise.
func (r eventsV1Recorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	if a, ok := r.rec.(events.AnnotatedEventRecorder); ok {
		a.AnnotatedEventf(object, nil, annotations, eventtype, reason, reason, messageFmt, args...)
		return
	}
	r.rec.Eventf(object, nil, eventtype, reason, reason, messageFmt, args...)
}

func (r eventsV1Recorder) WithLogger(logger klog.Logger) record.EventRecorderLogger {
	return eventsV1Recorder{rec: r.rec.WithLogger(logger)}
}
