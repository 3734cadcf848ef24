// Package storetest is the conformance suite every [store.Store] must pass:
// the memory store, the Redis store (against miniredis and a real
// redis-server) and any store you write.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clk *storetest.Clock) store.Store {
//			s, err := memory.New(memory.Config{Now: clk.Now, SweepInterval: time.Hour})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite compares the store, over thousands of seeded random request
// streams on a fake clock, with a brute-force reference model (a list of
// timestamps per key) and requires identical decisions: admission, every
// window's remaining and reset, retry-after and the binding window. It also
// checks atomicity under 1,000 concurrent requests, that rejections consume
// nothing, sliding (not fixed) windows, honest retry-after values, key
// independence under load, clock jumps, limit edges and Close.
//
// Stores that implement [store.Admin] are also checked through Peek and
// Reset; the tests that need inspection skip for stores that do not.
//
// # Failing on demand
//
// [Faulty] wraps any store and fails its calls when told to: an error, a
// delay, a black hole until the caller's deadline. It is how code that
// calls a Store (the middleware's failure policies, circuit breaker and
// deny cache) is tested without hand-written fakes:
//
//	st := storetest.NewFaulty(mem)
//	st.Fail(errors.New("connection refused")) // every call fails
//	st.Set(storetest.Fault{Hang: true})        // every call waits for its deadline
//	st.Fail(nil)                               // healed
//
// # On the real clock
//
// [NeverEarly] is apart: a real-time check of a store on its real clock
// that no window admits more than its limit within less than its length,
// however finely the calls are timed.
package storetest
