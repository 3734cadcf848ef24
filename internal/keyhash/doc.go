// Package keyhash turns client identities (an API client's ID, an address
// bucket) into store keys with AES-CMAC (RFC 4493) under a secret, so that
// no store, log line or metric holds an API key or an address. Keys of an
// IPv4 client cost one AES block, with the part that does not depend on the
// address computed once per scope.
//
// The bytes hashed are a stable contract: keys already in a shared store
// must not move when the code changes (see TestStoreKeysUnchanged).
package keyhash
