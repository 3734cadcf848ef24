package redis

import "github.com/ratekit/ratekit/store"

var _ store.ErrorClassifier = (*Store)(nil)

// ErrorKind returns [Kind](err), so that the middleware can label store
// failures without importing this package.
func (s *Store) ErrorKind(err error) string { return Kind(err) }
