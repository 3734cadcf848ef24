package metrics_test

import (
	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/middleware"
)

// The package metrics must not import middleware (import direction); this
// test-only assertion keeps the method set in step with the interface.
var _ middleware.Observer = (*metrics.Collector)(nil)
