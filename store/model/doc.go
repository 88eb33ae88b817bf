// Package model holds the records of a usipipo node — users, plans,
// subscriptions, VPN keys, MTProto secrets, payments, the credit ledger,
// referrals, tickets, settings, API keys, admins and the audit log — and the
// typed domain errors that the store and the service layer share.
//
// Records are plain values encoded as JSON in bbolt. Every record carries a
// Version that the store increments on each write; caches key derived values
// by (id, version), so a write can never be shadowed by a stale entry.
//
// Fields that hold secret material are of type Sealed: AES-256-GCM blobs made
// by store/keyring before a command is applied. Nothing in this package ever
// holds a secret in clear.
package model
