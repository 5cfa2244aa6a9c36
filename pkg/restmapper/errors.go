package restmapper

import (
	"fmt"
	"strings"
	"time"
)

// NoMatchError is the error of a Mapper lookup that found no match although
// re-discovery was tried or rate-limited. It wraps the lookup's
// *meta.NoKindMatchError or *meta.NoResourceMatchError, so meta.IsNoMatchError
// and errors.As see through it, and it says when discovery last ran.
type NoMatchError struct {
	// Err is the no-match error of the lookup.
	Err error
	// Group is the API group that was re-discovered ("" for the core
	// group); meaningless if AllGroups is set.
	Group string
	// AllGroups is set when the lookup named no group, so all groups were
	// re-discovered.
	AllGroups bool
	// RefreshedAt is when the newest discovery covering Group started.
	RefreshedAt time.Time
	// RefreshErr is the error of that discovery, nil if it succeeded.
	RefreshErr error
	// NextRefresh is the earliest time another miss may re-discover Group.
	NextRefresh time.Time
}

// Error names what was looked up and when discovery was refreshed.
func (e *NoMatchError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	what := fmt.Sprintf("API group %q", e.Group)
	switch {
	case e.AllGroups:
		what = "all API groups"
	case e.Group == "":
		what = "the core API group"
	}
	at := e.RefreshedAt.UTC().Format(time.RFC3339)
	if e.RefreshErr != nil {
		fmt.Fprintf(&b, "; discovery of %s at %s failed: %v", what, at, e.RefreshErr)
	} else {
		fmt.Fprintf(&b, "; discovery of %s was refreshed at %s", what, at)
	}
	fmt.Fprintf(&b, " (next refresh on a miss not before %s)", e.NextRefresh.UTC().Format(time.RFC3339))
	return b.String()
}

// Unwrap returns the no-match error of the lookup.
func (e *NoMatchError) Unwrap() error {
	return e.Err
}

// noMatch wraps the no-match error err of a lookup of key into a
// *NoMatchError.
func (m *Mapper) noMatch(key string, err error) error {
	m.mu.RLock()
	last, lastErr := m.lastAttemptLocked(key)
	m.mu.RUnlock()
	e := &NoMatchError{
		Err:         err,
		AllGroups:   key == allGroups,
		RefreshedAt: last,
		RefreshErr:  lastErr,
		NextRefresh: last.Add(m.interval),
	}
	if !e.AllGroups {
		e.Group = key
	}
	return e
}
