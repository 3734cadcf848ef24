package memory_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clk *storetest.Clock) store.Store {
		s, err := memory.New(memory.Config{Now: clk.Now, SweepInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
