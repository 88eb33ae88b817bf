// Package store keeps a usipipo node's state in one bbolt file.
//
// There are two kinds of writes (DESIGN.md principle 3):
//
//   - Domain commands (commands_*.go) are typed, serialisable values whose
//     ids, times and random material are decided before they are applied.
//     Each command first plans against a read-only view — every invariant
//     (quotas, one trial, balances, states) is checked there — and only then
//     returns a mutation that cannot fail on domain grounds. So ApplyBatch can
//     reject one command alone while the rest of its group commits, and the
//     same command stream applied to two stores gives byte-identical files'
//     contents. Apply reads no clock, no randomness and no map order.
//     Commands reach the disk through a group committer (Submit) that starts
//     the next transaction as soon as the previous fsync ends, and every
//     applied command becomes an audit entry with its secrets redacted.
//
//   - Node-local telemetry (telemetry.go): hourly and daily usage buckets,
//     last-used times, conversation state, delivery receipts. It is batched by
//     its producers, written in its own buckets, never audited.
//
// Indexes are explicit buckets maintained in the same transaction as their
// record (tables.go); CheckIndexes rebuilds them from the records and compares,
// and tests run it on every store they close.
package store
