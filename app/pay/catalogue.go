package pay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Product is what a payment buys: a plan for Months, a data package of Qty
// bytes for the key RefID names, Qty extra key slots, or Qty credits.
type Product = model.Product

// Product kinds.
const (
	KindPlan    = "plan"
	KindData    = store.ProductData
	KindSlots   = "slots"
	KindCredits = "credits"
)

// Catalogue is what the node sells besides its plans (which are store
// records with their own prices), and the rules of selling. It is kept as
// the setting "catalogue" so every adapter and node sees the same values.
type Catalogue struct {
	// Discounts for multi-month plan purchases; the largest whose Months is
	// at most the months bought applies.
	Discounts []Discount `json:"discounts"`
	MaxMonths int        `json:"max_months"`
	// DataPackages top up one key's data for its current period.
	DataPackages []Package `json:"data_packages"`
	// Slot is the price of one extra key slot; MaxSlots per purchase.
	Slot     Price `json:"slot"`
	MaxSlots int   `json:"max_slots"`
	// CreditPackages are credits sold for money.
	CreditPackages []Package `json:"credit_packages"`

	// Anti-fraud.
	MaxOpenInvoices   int `json:"max_open_invoices"`   // unpaid invoices per user
	InvoiceTTLMinutes int `json:"invoice_ttl_minutes"` // then a pending invoice expires
	RefundsToBlock    int `json:"refunds_to_block"`    // refunds that flag and block a user (0: never)
	TrialLikeMaxDays  int `json:"trial_like_max_days"` // plans this short need a first paid purchase (0: none)
}

// Discount is a percentage off for buying at least Months.
type Discount struct {
	Months  int `json:"months"`
	Percent int `json:"percent"`
}

// Package is a quantity (bytes or credits) at a price.
type Package struct {
	Qty   int64 `json:"qty"`
	Price Price `json:"price"`
}

// Price is an amount in Telegram Stars and in US cents.
type Price struct {
	Stars    int64 `json:"stars"`
	USDCents int64 `json:"usd_cents"`
}

const settingCatalogue = "catalogue"

// DefaultCatalogue is the catalogue of a new node.
func DefaultCatalogue() Catalogue {
	return Catalogue{
		Discounts:    []Discount{{3, 10}, {6, 15}, {12, 25}},
		MaxMonths:    12,
		DataPackages: []Package{{10 << 30, Price{75, 149}}, {50 << 30, Price{250, 499}}},
		Slot:         Price{50, 99}, MaxSlots: 5,
		CreditPackages:  []Package{{100, Price{100, 199}}, {500, Price{450, 899}}},
		MaxOpenInvoices: 3, InvoiceTTLMinutes: 60, RefundsToBlock: 2, TrialLikeMaxDays: 7,
	}
}

// Catalogue returns the current catalogue (the default when none is stored).
func (s *Service) Catalogue() Catalogue {
	c := DefaultCatalogue()
	st, err := s.st.Setting(settingCatalogue)
	if err != nil {
		return c
	}
	if err := json.Unmarshal(st.Value, &c); err != nil {
		s.log.Error("catalogue_unreadable", "service", "pay", "details", err.Error())
		return DefaultCatalogue()
	}
	return c
}

// SetCatalogue stores a new catalogue after checking it.
func (s *Service) SetCatalogue(ctx context.Context, a Actor, c Catalogue) error {
	if err := c.valid(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.PutSetting{Name: settingCatalogue, Value: b}, "")
}

func (c Catalogue) valid() error {
	bad := func(what string) error { return fmt.Errorf("catalogue: %s: %w", what, model.ErrInvalid) }
	if c.MaxMonths < 1 || c.MaxMonths > 36 {
		return bad("max_months must be 1..36")
	}
	for _, d := range c.Discounts {
		if d.Months < 2 || d.Percent < 0 || d.Percent >= 100 {
			return bad("a discount needs months >= 2 and a percent 0..99")
		}
	}
	for _, ps := range [][]Package{c.DataPackages, c.CreditPackages} {
		seen := map[int64]bool{}
		for _, p := range ps {
			if p.Qty <= 0 || !p.Price.valid() || seen[p.Qty] {
				return bad("packages need distinct positive quantities and positive prices")
			}
			seen[p.Qty] = true
		}
	}
	if c.MaxSlots < 0 || (c.MaxSlots > 0 && !c.Slot.valid()) {
		return bad("slots need a positive price")
	}
	if c.MaxOpenInvoices < 1 || c.InvoiceTTLMinutes < 1 || c.RefundsToBlock < 0 || c.TrialLikeMaxDays < 0 {
		return bad("anti-fraud limits out of range")
	}
	return nil
}

func (p Price) valid() bool { return p.Stars > 0 && p.USDCents > 0 }

// Price is the one price function: what a product costs now, in Stars and in
// US cents. Every adapter and every invoice uses it; pre-checkout and
// settlement compare against the amount it gave when the invoice was made.
func (s *Service) Price(product Product) (stars int64, usdCents int64, err error) {
	p, err := s.price(s.Catalogue(), product)
	return p.Stars, p.USDCents, err
}

func (s *Service) price(c Catalogue, pr Product) (Price, error) {
	notForSale := func(why string) (Price, error) {
		return Price{}, fmt.Errorf("%s %s: %w", pr.Kind, why, ErrNotForSale)
	}
	switch pr.Kind {
	case KindPlan:
		if pr.Months < 1 || pr.Months > c.MaxMonths || pr.Qty != 0 {
			return notForSale(fmt.Sprintf("for %d months", pr.Months))
		}
		plan, err := s.st.Plan(pr.RefID)
		if errors.Is(err, model.ErrNotFound) || (err == nil && !plan.Active) {
			return notForSale("not offered")
		}
		if err != nil {
			return Price{}, err
		}
		pct := 0
		for _, d := range c.Discounts {
			if d.Months <= pr.Months && d.Percent > pct {
				pct = d.Percent
			}
		}
		m := int64(pr.Months)
		return Price{discounted(plan.PriceStars*m, pct), discounted(plan.PriceUSDCents*m, pct)}, nil
	case KindData:
		if pr.Months != 0 || !model.ValidID(pr.RefID) {
			return notForSale("needs the key it tops up")
		}
		return pkgPrice(c.DataPackages, pr.Qty, notForSale)
	case KindCredits:
		if pr.Months != 0 || pr.RefID != "" {
			return notForSale("malformed")
		}
		return pkgPrice(c.CreditPackages, pr.Qty, notForSale)
	case KindSlots:
		if pr.Qty < 1 || pr.Qty > int64(c.MaxSlots) || pr.Months != 0 || pr.RefID != "" {
			return notForSale(fmt.Sprintf("x%d", pr.Qty))
		}
		return Price{c.Slot.Stars * pr.Qty, c.Slot.USDCents * pr.Qty}, nil
	}
	return notForSale("unknown kind")
}

func pkgPrice(ps []Package, qty int64, notForSale func(string) (Price, error)) (Price, error) {
	i := slices.IndexFunc(ps, func(p Package) bool { return p.Qty == qty })
	if i < 0 {
		return notForSale(fmt.Sprintf("package of %d", qty))
	}
	return ps[i].Price, nil
}

// discounted takes pct percent off, never below 1 (a priced product is never free).
func discounted(amount int64, pct int) int64 {
	if amount <= 0 {
		return 0
	}
	return max(amount*int64(100-pct)/100, 1)
}
