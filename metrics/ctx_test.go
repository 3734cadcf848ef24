package metrics_test

import "context"

// ctx is the context the tests pass to the Observer methods: the collector
// reads nothing from it.
var ctx = context.Background()
