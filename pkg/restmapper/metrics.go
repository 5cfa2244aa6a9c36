package restmapper

import "github.com/prometheus/client_golang/prometheus"

// unservedGroupLabel is the group label of discoveries that found the group
// not served, so that names from user input (typos) do not each add a time
// series.
const unservedGroupLabel = "<unserved>"

// discoveries counts the API discoveries of all Mappers.
var discoveries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "ebb",
	Subsystem: "restmapper",
	Name:      "discoveries_total",
	Help: "API discoveries run by the REST mapper, by API group and result. " +
		`The group is "*" for a discovery of all groups, "" for the core group and "<unserved>" when the group was not found; ` +
		"the result is success, not_found or error.",
}, []string{"group", "result"})

// RegisterMetrics registers the package's metrics with r:
// ebb_restmapper_discoveries_total{group,result}, which counts the
// discoveries of all Mappers, the first one and every re-discovery. It
// returns an error if they are registered with r already.
func RegisterMetrics(r prometheus.Registerer) error {
	return r.Register(discoveries)
}
