package memory_test

import (
	"testing"

	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
)

// TestRealTimeNeverEarly is a real-time test (about 2.3 s, skipped under
// -short): on the wall clock, with the store's default Now, no eleven
// admissions at 10 per second fall within less than a second (issue 17,
// item 6). See storetest.NeverEarly.
func TestRealTimeNeverEarly(t *testing.T) {
	storetest.NeverEarly(t, newStore(t, memory.Config{}))
}
