// Package cache holds values derived from the store — decrypted secrets,
// rendered client configs, QR codes, assembled views — and never the truth
// (DESIGN.md principle 5).
//
// # Why versioned keys
//
// A [Key] names a derived value by record kind, record id and record version
// (plus an optional [Key.Variant] such as "qr-png"). Every write to a record
// bumps its version in the same bbolt transaction, so a reader that has seen
// version v asks for a key that no value derived from an older version can
// occupy. There is no invalidation step, hence no window in which a stale
// entry can shadow a write: superseded entries are simply never asked for
// again and age out by TTL or eviction.
//
// # Shape
//
// [Cache] wraps one ristretto cache whose keys are 64-bit xxhash digests of
// the Key; the full Key is stored beside the value and compared on every hit,
// so a hash collision reads as a miss, never as a wrong value. Values are
// typed at the call site through the generic functions [Get], [Set] and
// [GetOrCompute]; a value stored under one type and read as another is a miss.
//
// Each value carries a TTL [Class] (users 15 min, VPN configs 1 h, static data
// 24 h) and a cost in bytes; [Options.MaxBytes] bounds the sum. With MaxBytes
// zero (or a nil *Cache) the cache is disabled: every function behaves the
// same, only GetOrCompute computes on every call.
//
// ristretto applies sets asynchronously and may refuse them under contention
// or by admission policy, so a Set is a hint: callers must never rely on a
// value being present. [Cache.Wait] drains the set buffer for tests.
//
// [GetOrCompute] collapses concurrent misses for one Key into a single
// compute (singleflight) and does not cache errors.
//
// # Metrics
//
// When [Options.Metrics] is set the cache exports, on that VictoriaMetrics set,
// usipipo_cache_hits_total{kind}, usipipo_cache_misses_total{kind},
// usipipo_cache_evictions_total (entries pushed out for room; TTL expiry is not
// counted) and the usipipo_cache_bytes gauge (cost currently held). Kinds are
// a small set of code constants; past 32 distinct kinds, further ones
// are counted under kind="other" to keep the label bounded.
package cache
