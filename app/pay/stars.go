package pay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// HandleUpdate processes one Telegram update: pre-checkout queries,
// successful and refunded payments here, everything else by the installed
// Handler. A nil return means the update is done (granted, refused and
// audited, or handed over); an error means it should be retried.
func (s *Service) HandleUpdate(ctx context.Context, u *Update) error {
	isPayment := u.PreCheckoutQuery != nil || (u.Message != nil && (u.Message.SuccessfulPayment != nil || u.Message.RefundedPayment != nil))
	if isPayment && s.bot == nil {
		return fmt.Errorf("stars: %w", ErrNoProvider)
	}
	switch {
	case u.PreCheckoutQuery != nil:
		return s.preCheckout(ctx, u.PreCheckoutQuery)
	case u.Message != nil && u.Message.SuccessfulPayment != nil:
		return s.starsPaid(ctx, u.Message)
	case u.Message != nil && u.Message.RefundedPayment != nil:
		return s.starsRefunded(ctx, u.Message)
	}
	if b := s.handler.Load(); b != nil && b.h != nil {
		return b.h.HandleUpdate(ctx, u)
	}
	return nil
}

// checkStars re-validates a Stars payment event against the pending record
// it names: our payload, our record, its currency, amount, user, and the
// price the catalogue gives now. It returns the payment or the reason.
func (s *Service) checkStars(payload string, from int64, currency string, amount int64, pending bool) (*model.Payment, error) {
	id, err := s.ParsePayload(Stars, payload)
	if err != nil {
		return nil, err
	}
	p, err := s.st.Payment(id)
	if err != nil {
		return nil, err
	}
	if p.Provider != Stars || p.Currency != XTR || currency != XTR || amount != p.Amount || p.Payload != payload {
		return p, fmt.Errorf("%d %s for %d %s: %w", amount, currency, p.Amount, p.Currency, ErrMismatch)
	}
	u, err := s.st.User(p.UserID)
	if err != nil {
		return p, err
	}
	if u.TelegramID != from {
		return p, fmt.Errorf("paid by another Telegram user: %w", ErrMismatch)
	}
	if pending {
		if u.Banned || u.Erased {
			return p, fmt.Errorf("user %s: %w", u.ID, model.ErrBanned)
		}
		if p.Status != model.PayPending {
			return p, fmt.Errorf("payment is %s: %w", p.Status, model.ErrState)
		}
		if price, err := s.price(s.Catalogue(), p.Product); err != nil || price.Stars != p.Amount {
			return p, fmt.Errorf("price changed since the invoice: %w", ErrMismatch)
		}
	}
	return p, nil
}

// preCheckout answers a pre_checkout_query (Telegram waits 10 s for it).
func (s *Service) preCheckout(ctx context.Context, q *PreCheckoutQuery) error {
	p, err := s.checkStars(q.InvoicePayload, q.From.ID, q.Currency, q.TotalAmount, true)
	ans := map[string]any{"pre_checkout_query_id": q.ID, "ok": err == nil}
	if err != nil {
		r := store.RejectPayment{Provider: Stars, Event: "pre_checkout", Ref: q.ID, Why: err.Error()}
		if p != nil {
			r.UserID, r.PaymentID = p.UserID, p.ID
		}
		s.reject(ctx, ActorStars, r)
		ans["error_message"] = "This invoice is no longer valid. Please ask for a new one."
	}
	if err := s.bot.Call(ctx, "answerPreCheckoutQuery", ans, nil); err != nil {
		return fmt.Errorf("answering pre-checkout: %w", err)
	}
	return nil
}

// starsPaid grants a successful payment, once per charge id.
func (s *Service) starsPaid(ctx context.Context, msg *Message) error {
	sp := msg.SuccessfulPayment
	var from int64
	if msg.From != nil {
		from = msg.From.ID
	}
	p, err := s.checkStars(sp.InvoicePayload, from, sp.Currency, sp.TotalAmount, false)
	if err != nil {
		if isTransient(err) {
			return err
		}
		r := store.RejectPayment{Provider: Stars, Event: "successful_payment", Ref: sp.TelegramPaymentChargeID, Why: err.Error()}
		if p != nil {
			r.UserID, r.PaymentID = p.UserID, p.ID
		}
		s.reject(ctx, ActorStars, r)
		s.notifyAdmins(ctx, fmt.Sprintf("⚠️ Stars payment of %d %s not granted (%s); charge %s may need a refund.",
			sp.TotalAmount, sp.Currency, err, sp.TelegramPaymentChargeID))
		return nil
	}
	_, err = s.settle(ctx, ActorStars, p, sp.TelegramPaymentChargeID, sp.TotalAmount, sp.Currency)
	return err
}

// isTransient reports whether an error is the node's (storage, context), not
// the payment's: the update should be retried.
func isTransient(err error) bool {
	for _, e := range []error{ErrBadPayload, ErrMismatch, model.ErrNotFound, model.ErrState, model.ErrInvalid,
		model.ErrBanned, model.ErrErased, model.ErrExists, ErrNotForSale} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// settle grants payment p for a provider's charge. It reports whether this
// call granted; a charge already recorded for p is success (its receipt is
// sent if it was not yet). Refusals are audited by the store; only
// transient errors are returned.
func (s *Service) settle(ctx context.Context, a Actor, p *model.Payment, charge string, amount int64, currency string) (bool, error) {
	defer s.lock(p.ID)()
	m := s.meta(a)
	var ids [4]string
	for i := range ids {
		id, err := s.newID(m.At)
		if err != nil {
			return false, err
		}
		ids[i] = id
	}
	var cmd store.Command = store.SettlePayment{PaymentID: p.ID, ChargeID: charge, Amount: amount, Currency: currency,
		SubID: ids[0], EntryID: ids[1], VestID: ids[2]}
	if p.Product.Kind == KindData {
		cmd = store.SettleDataPayment{PaymentID: p.ID, ChargeID: charge, Amount: amount, Currency: currency, VestID: ids[2]}
	}
	err := s.do(ctx, m, cmd, p.UserID)
	switch {
	case err == nil:
		s.rev.touch()
		return true, s.receipt(ctx, p)
	case errors.Is(err, model.ErrExists):
		q, qerr := s.st.PaymentByCharge(p.Provider, charge)
		if qerr == nil && q.ID == p.ID {
			return false, s.receipt(ctx, p) // granted before (a retry, a duplicate, a restart)
		}
		s.notifyAdmins(ctx, fmt.Sprintf("⚠️ %s charge %s was presented for payment %s but belongs to another payment.", p.Provider, charge, p.ID))
		return false, nil
	case errors.Is(err, model.ErrState):
		// Paid twice for one invoice: the second charge is not granted.
		s.notifyAdmins(ctx, fmt.Sprintf("⚠️ Payment %s was paid again by %s charge %s; not granted, consider a refund.", p.ID, p.Provider, charge))
		return false, nil
	case !isTransient(err):
		// Paid, but the store refuses the grant (a banned user, a product
		// gone): the money was taken, so the admins must decide.
		s.notifyAdmins(ctx, fmt.Sprintf("⚠️ %s charge %s for payment %s not granted: %v; consider a refund.", p.Provider, charge, p.ID, err))
		return false, nil
	}
	return false, err
}

const receiptPrefix = "pay/"

// receipt tells the user and the admins about a granted payment, once: the
// Receipts telemetry records that it was sent. A failed send is retried by
// the caller (the update stays pending).
func (s *Service) receipt(ctx context.Context, p *model.Payment) error {
	key := receiptPrefix + p.ID
	if done, err := s.marks.get(key); err != nil || done != nil {
		return err
	}
	u, err := s.st.User(p.UserID)
	if err != nil {
		return err
	}
	title, _ := describe(p.Product)
	if s.bot != nil && u.TelegramID != 0 {
		text := fmt.Sprintf("✅ Payment received: %s — %s. Receipt %s.", title, formatAmount(p.Amount, p.Currency), p.ID)
		if err := s.bot.Call(ctx, "sendMessage", map[string]any{"chat_id": u.TelegramID, "text": text}, nil); err != nil {
			return fmt.Errorf("sending receipt: %w", err)
		}
	}
	s.notifyAdmins(ctx, fmt.Sprintf("💰 %s paid %s by %s: %s (payment %s)", p.UserID, formatAmount(p.Amount, p.Currency), p.Provider, title, p.ID))
	s.marks.put(key, []byte("sent"))
	return nil
}

func formatAmount(amount int64, currency string) string {
	if currency == USD {
		return fmt.Sprintf("%d.%02d USD", amount/100, amount%100)
	}
	return fmt.Sprintf("%d ⭐", amount)
}

// notifyAdmins sends a message to every admin chat; failures are logged.
func (s *Service) notifyAdmins(ctx context.Context, text string) {
	if s.bot == nil {
		s.log.Warn("payment_alert", "service", "pay", "details", text)
		return
	}
	for _, chat := range s.admins {
		if err := s.bot.Call(ctx, "sendMessage", map[string]any{"chat_id": chat, "text": text}, nil); err != nil {
			s.log.Warn("admin_notify_failed", "service", "pay", "details", err.Error())
		}
	}
}

// starsRefunded reverses a payment Telegram refunded.
func (s *Service) starsRefunded(ctx context.Context, msg *Message) error {
	rp := msg.RefundedPayment
	p, err := s.st.PaymentByCharge(Stars, rp.TelegramPaymentChargeID)
	if errors.Is(err, model.ErrNotFound) {
		s.reject(ctx, ActorStars, store.RejectPayment{Provider: Stars, Event: "refunded_payment",
			Ref: rp.TelegramPaymentChargeID, Why: "refund of a charge never granted"})
		return nil
	}
	if err != nil {
		return err
	}
	return s.refund(ctx, ActorStars, p, rp.TelegramPaymentChargeID, "telegram")
}

// refund reverses a paid payment (idempotent by refund id), tells the user
// and the admins, and blocks a user whose refunds reach the catalogue's
// RefundsToBlock.
func (s *Service) refund(ctx context.Context, a Actor, p *model.Payment, refundID, reason string) error {
	m := s.meta(a)
	e1, err := s.newID(m.At)
	if err != nil {
		return err
	}
	e2, err := s.newID(m.At)
	if err != nil {
		return err
	}
	err = s.do(ctx, m, store.RefundPayment{PaymentID: p.ID, RefundID: refundID, EntryID: e1, VestEntryID: e2, Reason: reason}, p.UserID)
	if err != nil {
		if isTransient(err) {
			return err
		}
		return nil // refused and audited
	}
	s.rev.touch()
	key := "refund/" + refundID
	if done, err := s.marks.get(key); err != nil || done != nil {
		return err
	}
	s.notifyAdmins(ctx, fmt.Sprintf("↩️ Payment %s of %s refunded (%s).", p.ID, formatAmount(p.Amount, p.Currency), reason))
	if u, err := s.st.User(p.UserID); err == nil && s.bot != nil && u.TelegramID != 0 {
		text := fmt.Sprintf("↩️ Your payment %s was refunded; what it bought has been withdrawn.", p.ID)
		if err := s.bot.Call(ctx, "sendMessage", map[string]any{"chat_id": u.TelegramID, "text": text}, nil); err != nil {
			s.log.Warn("refund_notice_failed", "service", "pay", "user_id", p.UserID, "details", err.Error())
		}
	}
	s.blockRepeatedRefunds(ctx, p.UserID)
	s.marks.put(key, []byte("sent"))
	return nil
}

func (s *Service) blockRepeatedRefunds(ctx context.Context, userID string) {
	limit := s.Catalogue().RefundsToBlock
	if limit == 0 {
		return
	}
	n := 0
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ps, next, err := s.st.Payments(userID, pg)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Status == model.PayRefunded {
				n++
			}
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	if n < limit {
		return
	}
	err := s.do(ctx, s.meta(ActorSystem), store.SetBanned{UserID: userID, Banned: true,
		Reason: fmt.Sprintf("fraud: %d refunds", n)}, userID)
	if err == nil {
		s.notifyAdmins(ctx, fmt.Sprintf("🚫 User %s blocked after %d refunds.", userID, n))
	}
}

// RefundStars refunds a Stars payment to its payer (refundStarPayment) and
// reverses its grant. Telegram's refunded_payment update for it finds the
// payment already refunded and does nothing more.
func (s *Service) RefundStars(ctx context.Context, a Actor, paymentID string) error {
	if s.bot == nil {
		return fmt.Errorf("stars: %w", ErrNoProvider)
	}
	p, err := s.st.Payment(paymentID)
	if err != nil {
		return err
	}
	if p.Provider != Stars || p.ProviderChargeID == "" {
		return fmt.Errorf("payment %s is not a settled Stars payment: %w", paymentID, model.ErrState)
	}
	if p.Status != model.PayPaid && p.Status != model.PayRefunded {
		return fmt.Errorf("payment %s is %s: %w", paymentID, p.Status, model.ErrState)
	}
	u, err := s.st.User(p.UserID)
	if err != nil {
		return err
	}
	err = s.bot.Call(ctx, "refundStarPayment", map[string]any{"user_id": u.TelegramID,
		"telegram_payment_charge_id": p.ProviderChargeID}, nil)
	var ae *APIError
	if err != nil && !(errors.As(err, &ae) && strings.Contains(ae.Description, "CHARGE_ALREADY_REFUNDED")) {
		return err
	}
	if err := s.refund(ctx, a, p, p.ProviderChargeID, "admin"); err != nil {
		return err
	}
	q, err := s.st.Payment(paymentID)
	if err != nil {
		return err
	}
	if q.Status != model.PayRefunded {
		return fmt.Errorf("payment %s stays %s: %w", paymentID, q.Status, model.ErrState)
	}
	return nil
}

// RecordRefund reverses a payment refunded outside the node (a QvaPay refund
// made by hand, a chargeback), idempotent by refundID, which names the
// provider's refund.
func (s *Service) RecordRefund(ctx context.Context, a Actor, paymentID, refundID string) error {
	if refundID == "" {
		return fmt.Errorf("a refund reference is required: %w", model.ErrInvalid)
	}
	p, err := s.st.Payment(paymentID)
	if err != nil {
		return err
	}
	if p.Status != model.PayPaid && p.Status != model.PayRefunded {
		return fmt.Errorf("payment %s is %s: %w", paymentID, p.Status, model.ErrState)
	}
	if err := s.refund(ctx, a, p, refundID, "manual"); err != nil {
		return err
	}
	if q, err := s.st.Payment(paymentID); err != nil || q.Status != model.PayRefunded {
		return fmt.Errorf("payment %s not refunded: %w", paymentID, model.ErrState)
	}
	return nil
}

// ReconcileResult counts what a reconciliation changed.
type ReconcileResult struct {
	Seen, Settled, Refunded int
}

const starsCheckpoint = "stars/tx_offset"

// ReconcileStars walks getStarTransactions from the last checkpoint (with an
// overlap) and grants incoming payments the node never saw, and reverses
// refunds it missed. Run it at start and periodically.
func (s *Service) ReconcileStars(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if s.bot == nil {
		return res, fmt.Errorf("stars: %w", ErrNoProvider)
	}
	const page, overlap = 100, 100
	start := 0
	if b, err := s.st.GetTelemetry(store.Checkpoints, starsCheckpoint); err == nil && b != nil {
		fmt.Sscan(string(b), &start)
	}
	offset := max(start-overlap, 0)
	for {
		var out struct {
			Transactions []StarTransaction `json:"transactions"`
		}
		if err := s.bot.Call(ctx, "getStarTransactions", map[string]any{"offset": offset, "limit": page}, &out); err != nil {
			return res, err
		}
		for i := range out.Transactions {
			if err := s.reconcileOne(ctx, &out.Transactions[i], &res); err != nil {
				return res, err
			}
		}
		res.Seen += len(out.Transactions)
		offset += len(out.Transactions)
		if err := s.st.PutTelemetry(store.Checkpoints, map[string][]byte{starsCheckpoint: fmt.Appendf(nil, "%d", offset)}); err != nil {
			return res, err
		}
		if len(out.Transactions) < page {
			return res, nil
		}
	}
}

func (s *Service) reconcileOne(ctx context.Context, tx *StarTransaction, res *ReconcileResult) error {
	switch {
	case tx.Source != nil && tx.Source.Type == "user" && tx.Source.InvoicePayload != "":
		if _, err := s.st.PaymentByCharge(Stars, tx.ID); err == nil {
			return nil
		}
		var from int64
		if tx.Source.User != nil {
			from = tx.Source.User.ID
		}
		p, err := s.checkStars(tx.Source.InvoicePayload, from, XTR, tx.Amount, false)
		if err != nil {
			if isTransient(err) {
				return err
			}
			s.reject(ctx, ActorStars, store.RejectPayment{Provider: Stars, Event: "reconcile", Ref: tx.ID, Why: err.Error()})
			return nil
		}
		granted, err := s.settle(ctx, ActorStars, p, tx.ID, tx.Amount, XTR)
		if granted {
			res.Settled++
		}
		return err
	case tx.Receiver != nil && tx.Receiver.Type == "user":
		p, err := s.st.PaymentByCharge(Stars, tx.ID)
		if err != nil || p.Status != model.PayPaid {
			return nil
		}
		if err := s.refund(ctx, ActorStars, p, tx.ID, "telegram"); err != nil {
			return err
		}
		res.Refunded++
	}
	return nil
}
