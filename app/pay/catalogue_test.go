package pay

import (
	"errors"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

func TestPrice(t *testing.T) {
	w := newWorld(t)
	key := w.id()
	cases := []struct {
		pr           Product
		stars, cents int64
		err          error
	}{
		{Product{Kind: KindPlan, RefID: w.plan.ID, Months: 1}, 100, 299, nil},
		{Product{Kind: KindPlan, RefID: w.plan.ID, Months: 3}, 270, 807, nil},   // 10% off
		{Product{Kind: KindPlan, RefID: w.plan.ID, Months: 7}, 595, 1779, nil},  // 15% off
		{Product{Kind: KindPlan, RefID: w.plan.ID, Months: 12}, 900, 2691, nil}, // 25% off
		{Product{Kind: KindPlan, RefID: w.plan.ID, Months: 13}, 0, 0, ErrNotForSale},
		{Product{Kind: KindPlan, RefID: w.plan.ID}, 0, 0, ErrNotForSale},
		{Product{Kind: KindPlan, RefID: w.id(), Months: 1}, 0, 0, ErrNotForSale},
		{Product{Kind: KindData, RefID: key, Qty: 10 << 30}, 75, 149, nil},
		{Product{Kind: KindData, RefID: key, Qty: 11 << 30}, 0, 0, ErrNotForSale},
		{Product{Kind: KindData, Qty: 10 << 30}, 0, 0, ErrNotForSale},
		{Product{Kind: KindSlots, Qty: 2}, 100, 198, nil},
		{Product{Kind: KindSlots, Qty: 6}, 0, 0, ErrNotForSale},
		{Product{Kind: KindCredits, Qty: 500}, 450, 899, nil},
		{Product{Kind: KindCredits, Qty: 7}, 0, 0, ErrNotForSale},
		{Product{Kind: "gold"}, 0, 0, ErrNotForSale},
	}
	for _, c := range cases {
		s, u, err := w.svc.Price(c.pr)
		if !errors.Is(err, c.err) || s != c.stars || u != c.cents {
			t.Errorf("%+v: %d⭐ %d¢ %v, want %d %d %v", c.pr, s, u, err, c.stars, c.cents, c.err)
		}
	}
	// The catalogue is a setting: a new one applies at once, a bad one is refused.
	cat := DefaultCatalogue()
	cat.Discounts = []Discount{{2, 50}}
	if err := w.svc.SetCatalogue(ctx(), "test", cat); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := w.svc.Price(Product{Kind: KindPlan, RefID: w.plan.ID, Months: 2}); s != 100 {
		t.Fatalf("2 months at 50%%: %d", s)
	}
	cat.Discounts = []Discount{{2, 100}}
	if err := w.svc.SetCatalogue(ctx(), "test", cat); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("a 100%% discount: %v", err)
	}
	cat = DefaultCatalogue()
	cat.DataPackages = append(cat.DataPackages, cat.DataPackages[0])
	if err := w.svc.SetCatalogue(ctx(), "test", cat); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("duplicate package: %v", err)
	}
}
