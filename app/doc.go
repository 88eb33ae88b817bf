// Package app is the node's service layer: every operation a user, an
// operator or an integrator can ask for — register a user, grant a plan,
// issue or revoke a key, move credits, create an API key — is one method of
// Service, and every rule lives here once (DESIGN.md principle 1). The bot,
// the REST API, the admin CLI and the panel are adapters that parse input,
// call a method, and render its result or its typed error (store/model's
// sentinel errors, matched with errors.Is).
//
// Methods decide everything a domain command needs before it is applied —
// ids, times, random material, sealed secrets, limits from policy — and
// submit it to the store, whose apply re-checks the invariants that depend
// on the state (quotas, one trial, balances) inside the write transaction.
//
// The Reconciler hands each data plane its desired set of credentials and
// brings their usage back as one UsageBatch per interval.
package app
