package redis

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/store/storetest"
)

// TestRealTimeNeverEarlyRealRedis is a real-time test (about 2.3 s, skipped
// under -short): against a real redis-server reading its own TIME, no
// eleven admissions at 10 per second fall within less than a second, from
// the start of the first call to the return of the eleventh (issue 17,
// item 6). See storetest.NeverEarly.
func TestRealTimeNeverEarlyRealRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test: skipped under -short")
	}
	c, _ := realClient(t)
	storetest.NeverEarly(t, newStore(t, c, Config{Prefix: testPrefix(t, c), Timeout: 5 * time.Second}))
}
