// Package notify sends a node's notifications and runs its broadcasts.
//
// # Notifications
//
// A Notifier's Run scans every Interval and sends, in the user's language
// (Spanish by default, English; texts in texts/*.json):
//
//   - expiry reminders 3 days and 1 day before a key's or MTProto secret's
//     expires_at, found through the store's expiry index;
//   - data-cap notices at 80% and 100% of a credential's cap, once per cap
//     period (a reset or a bought data package arms them again);
//   - "suspended" and "restored" notices, found by comparing the
//     active-credential indexes with the set the previous scan saw (a cap
//     cut-off is told as the 100% notice);
//   - admin alerts: errors reported through Alert, payments settled or
//     refunded (read from the audit trail past a watermark), a daily report
//     (users, active keys, revenue, traffic), and the newest encrypted backup
//     as a document (sendDocument) at most once per BackupEvery.
//
// Users get them by Telegram and, when their sealed personal data holds an
// e-mail address and Options.Mail is set, by e-mail (SMTP with STARTTLS
// required; a server without it is refused). Admins get them in their
// chats (Options.AdminChats) and at Options.AdminEmails.
//
// Each notification is sent once per channel: a node-local delivery receipt
// (store.Receipts telemetry) keyed by recipient, kind, subject, threshold
// and channel is written "pending" just before the request and with its
// outcome just after. A send that certainly failed clears it, so the next
// scan retries; only a crash during the request leaves "pending", which
// counts as sent — at most once, since the Bot API has no idempotency key
// and a doubled message is worse than the one-request window of a crash.
//
// # Broadcasts
//
// Broadcast queues a text for a Segment of users and returns its id;
// Status reports its progress and Cancel stops it; Broadcasts lists them.
// Run sends them one at a time, in pages of users, under Telegram's limits
// (Limits: 30 messages a second overall, one a second per chat, kept as
// Telegram observes them), pausing everyone for a 429's retry_after and
// marking users whose chat answers 403 (see BotBlocked, Unblock). A
// per-recipient receipt and a persisted cursor make a broadcast resume after
// a restart without messaging anyone twice.
//
// The Notifier is safe for concurrent use; Run does all the sending and
// stops with its context, letting requests in flight complete.
package notify
