// Package denycache remembers recent refusals of a shared store, so that a
// client told "refused, retry after r" is refused again locally for up to r
// without a round trip. It only ever repeats refusals, so it can never
// admit more than the store would; it is bounded in entries and needs no
// goroutine.
//
// It knows nothing of HTTP: the middleware puts it in front of any store
// that is not [store.Local].
package denycache
