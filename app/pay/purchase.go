package pay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Providers.
const (
	Stars  = "stars"
	QvaPay = "qvapay"
)

// Currencies of the providers' amounts.
const (
	XTR = "XTR" // Telegram Stars
	USD = "USD" // QvaPay amounts, in cents in our records
)

// Invoice is an open purchase: a pending payment and how to pay it.
type Invoice struct {
	PaymentID string `json:"payment_id"`
	Provider  string `json:"provider"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	URL       string `json:"url,omitempty"` // Stars invoice link or QvaPay pay link
}

// Buy opens an invoice for a product: Stars returns an invoice link
// (createInvoiceLink) the bot or a web page can open; QvaPay a pay link.
// Nothing is granted until the provider confirms the charge.
func (s *Service) Buy(ctx context.Context, a Actor, userID string, pr Product, provider string) (*Invoice, error) {
	return s.open(ctx, a, userID, pr, provider, false)
}

// SendStarsInvoice opens a Stars invoice and sends it into the user's chat
// (sendInvoice).
func (s *Service) SendStarsInvoice(ctx context.Context, a Actor, userID string, pr Product) (*Invoice, error) {
	return s.open(ctx, a, userID, pr, Stars, true)
}

func (s *Service) open(ctx context.Context, a Actor, userID string, pr Product, provider string, send bool) (*Invoice, error) {
	cat := s.Catalogue()
	price, err := s.price(cat, pr)
	if err != nil {
		return nil, err
	}
	u, err := s.st.User(userID)
	if err != nil {
		return nil, err
	}
	if u.Banned || u.Erased {
		return nil, fmt.Errorf("user %s: %w", userID, model.ErrBanned)
	}
	if err := s.antiFraud(ctx, a, u, pr, provider, cat); err != nil {
		return nil, err
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	p := model.Payment{ID: id, UserID: userID, Provider: provider, Product: pr}
	title, desc := describe(pr)
	var link string
	switch provider {
	case Stars:
		if s.bot == nil {
			return nil, fmt.Errorf("stars: %w", ErrNoProvider)
		}
		p.Amount, p.Currency, p.Payload = price.Stars, XTR, s.Payload(Stars, id)
	case QvaPay:
		creds, err := s.qvaCreds()
		if err != nil {
			return nil, err
		}
		p.Amount, p.Currency = price.USDCents, USD
		inv, err := s.qva.createInvoice(ctx, creds, p.Amount, title, id)
		if err != nil {
			return nil, err
		}
		p.Payload, link = inv.UUID, inv.URL
	default:
		return nil, fmt.Errorf("provider %q: %w", provider, ErrNoProvider)
	}
	if p.Amount <= 0 {
		return nil, fmt.Errorf("%s has no %s price: %w", pr.Kind, provider, ErrNotForSale)
	}
	if err := s.do(ctx, m, store.CreatePayment{Payment: p}, userID); err != nil {
		return nil, err
	}
	if provider == Stars {
		params := map[string]any{"title": title, "description": desc, "payload": p.Payload, "currency": XTR,
			"prices": []LabeledPrice{{Label: title, Amount: p.Amount}}}
		if send {
			params["chat_id"] = u.TelegramID
			err = s.bot.Call(ctx, "sendInvoice", params, nil)
		} else {
			err = s.bot.Call(ctx, "createInvoiceLink", params, &link)
		}
		if err != nil {
			// The pending record stays; it expires with the invoice TTL.
			return nil, err
		}
	}
	return &Invoice{PaymentID: id, Provider: provider, Amount: p.Amount, Currency: p.Currency, URL: link}, nil
}

// antiFraud applies the selling rules: a bound on open invoices per user,
// and trial-like plans (short ones) only after a first paid purchase. Every
// refusal is audited.
func (s *Service) antiFraud(ctx context.Context, a Actor, u *model.User, pr Product, provider string, cat Catalogue) error {
	open, paid := 0, false
	ttl := time.Duration(cat.InvoiceTTLMinutes) * time.Minute
	now := s.now()
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ps, next, err := s.st.Payments(u.ID, pg)
		if err != nil {
			return err
		}
		for _, p := range ps {
			switch {
			case p.Status == model.PayPaid || p.Status == model.PayRefunded:
				paid = paid || p.Status == model.PayPaid
			case p.Status == model.PayPending && now.Sub(p.Created) < ttl:
				open++
			}
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	refuse := func(why string, err error) error {
		s.reject(ctx, a, store.RejectPayment{Provider: provider, Event: "fraud", UserID: u.ID, Why: why})
		return err
	}
	if open >= cat.MaxOpenInvoices {
		return refuse(fmt.Sprintf("%d open invoices", open), fmt.Errorf("%d unpaid: %w", open, ErrOpenInvoices))
	}
	switch pr.Kind {
	case KindPlan:
		plan, err := s.st.Plan(pr.RefID)
		if err != nil {
			return err
		}
		if provider == Stars && cat.TrialLikeMaxDays > 0 && plan.DurationDays*pr.Months <= cat.TrialLikeMaxDays && !paid {
			return refuse("trial-like plan before a first paid purchase", ErrFirstPurchase)
		}
	case KindData:
		if err := s.dataTarget(u.ID, pr.RefID); err != nil {
			return err
		}
	}
	return nil
}

// dataTarget checks that a data package can top up the credential.
func (s *Service) dataTarget(userID, credID string) error {
	var owner string
	var st model.KeyStatus
	var capped bool
	if k, err := s.st.Key(credID); err == nil {
		owner, st, capped = k.UserID, k.Status, k.Limits.DataCap > 0
	} else if p, err2 := s.st.Proxy(credID); err2 == nil {
		owner, st, capped = p.UserID, p.Status, p.Limits.DataCap > 0
	} else if errors.Is(err, model.ErrNotFound) {
		return fmt.Errorf("credential %s: %w", credID, ErrNotForSale)
	} else {
		return err
	}
	if owner != userID || st == model.KeyRevoked || st == model.KeyExpired || !capped {
		return fmt.Errorf("credential %s takes no data package: %w", credID, ErrNotForSale)
	}
	return nil
}

func describe(pr Product) (title, desc string) {
	switch pr.Kind {
	case KindPlan:
		return fmt.Sprintf("VPN plan, %d month(s)", pr.Months), "uSipipo VPN access"
	case KindData:
		return fmt.Sprintf("%d GiB of data", pr.Qty>>30), "Extra data for one key this period"
	case KindSlots:
		return fmt.Sprintf("%d extra key slot(s)", pr.Qty), "More keys on your plan"
	case KindCredits:
		return fmt.Sprintf("%d credits", pr.Qty), "uSipipo credits"
	}
	return "uSipipo", "uSipipo"
}
