// Package pay is the node's payment service: the catalogue and its one price
// function, invoices through Telegram Stars and QvaPay, the intake of
// Telegram updates, refunds, reconciliation and the anti-fraud rules. It is
// a service of the app layer (DESIGN.md principle 1): the bot, the API and the
// panel call its methods and render their results and typed errors.
//
// # Exactly once
//
// A purchase is a pending model.Payment whose id the invoice's payload names,
// with an HMAC under a key derived from the data key so a payload cannot be
// forged. The grant happens only when the provider confirms the charge, in
// the same store command that marks the payment paid (store.SettlePayment,
// store.SettleDataPayment), which refuses a charge id already recorded — so a
// confirmation seen twice, concurrently or after a restart, grants once.
// Refunds go through store.RefundPayment, idempotent by refund id.
//
// # Telegram updates
//
// [Poller] is our own long poller on raw Bot API calls. Each batch of updates
// is persisted (node-local telemetry, fsynced) before the next getUpdates
// call confirms it to Telegram by its offset; each update is processed once
// by update_id (a receipt per processed id) and unprocessed ones are resumed
// after a restart. [Service.HandleUpdate] takes the payment updates
// (pre_checkout_query, successful_payment, refunded_payment) and hands every
// other update to the [Handler] the bot installs. [Webhook] is the same
// intake for Telegram's webhook on the public listener, used instead of the
// poller: an update is persisted before the 200 that acknowledges it.
// Handling starts while the update is being fsynced; one writer commits the
// updates received together, concurrent webhook requests and the receipts
// in shared transactions. A crash before that fsync or before a receipt
// means the update is handled again, so handlers are idempotent by
// update_id or by the provider's charge id.
//
// # Providers
//
// Telegram Stars (XTR, no provider token): invoices by sendInvoice or
// createInvoiceLink, pre-checkout re-validation, grants on
// successful_payment, refunds on refunded_payment or by refundStarPayment,
// and [Service.ReconcileStars] against getStarTransactions for payments
// that arrived while the node was down.
//
// QvaPay: invoices by create_invoice (app credentials sealed in a setting);
// the callback ([Service.QvaPayCallback]) is never trusted: the transaction is
// re-queried and granted only when status, amount and remote id match;
// [Service.SweepQvaPay] settles invoices whose callback never came and
// expires stale ones.
package pay
