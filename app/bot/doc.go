// Package bot is the Telegram bot: a thin adapter over the service layer
// (app.Service) and the payment service (pay.Service). It parses updates,
// calls one service method, and renders the result from the message
// catalogues in package i18n; no business rule lives here.
//
// # Updates
//
// The bot never polls. The payment service's intake persists every update
// before its offset is confirmed and hands each non-payment update to
// [Bot.HandleUpdate] (installed with pay.Service.SetHandler); updates are
// decoded into gopkg.in/telebot.v3 types. Dispatch is our own small router
// rather than telebot's Bot.ProcessUpdate: telebot v3.3.8's handlers get no
// context.Context, its errors go to a callback that cannot tell the intake
// to retry, and its HTTP calls close every connection and carry the token
// in transport errors. Replies go through pay.BotAPI (context-aware,
// keep-alive, token-scrubbed errors) and, for files, a multipart call of
// our own ([api]).
//
// # Safety
//
// Callback data is signed with an HMAC bound to the Telegram user it was
// sent to (callback.go), so a client cannot forge or replay another user's
// button. Every user has a token-bucket rate limit. A handler's error never
// reaches the intake: domain refusals are rendered as messages, anything
// else becomes an apology with a reference id for the user and the detail
// (with that id) for the admins. Multi-step flows keep their state in the
// store's Conversations telemetry, so they survive a restart; /cancel ends
// any of them.
//
// # Purchases
//
// Invoices are opened by the payment service (Stars in the chat, QvaPay as
// a pay link). The bot remembers what to deliver for each invoice it opened
// (an "await" record), and delivers — a key's config file and QR code, an
// ss:// or tg://proxy link, or a confirmation — as soon as the payment is
// paid: at once for a Stars successful_payment ([Bot.AfterPayments] wraps
// the intake's handler), and within seconds for QvaPay or reconciled
// payments ([Bot.Run]'s watcher). A delivery happens once per payment.
package bot
