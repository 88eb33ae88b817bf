package pay

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Reasons of usipipo_payment_failures_total: a fixed, small set so the
// series stay few and exist from the first scrape.
const (
	// FailRejected: a provider's payment event was refused (a payload we
	// did not issue, an amount/user/status mismatch, an unknown
	// transaction); store.RejectPayment audits it.
	FailRejected = "rejected"
	// FailFraud: a purchase refused by the anti-fraud rules.
	FailFraud = "fraud"
	// FailProviderError: a call to the provider's API failed (network,
	// HTTP status, refusal, unreadable answer).
	FailProviderError = "provider_error"
)

var (
	failProviders = [...]string{Stars, QvaPay}
	failReasons   = [...]string{FailRejected, FailFraud, FailProviderError}
)

// failures counts payment failures per provider and reason. The counts live
// in the service, so none is lost before RegisterMetrics.
type failures struct {
	n [len(failProviders)][len(failReasons)]atomic.Uint64
}

func (f *failures) add(provider, reason string) {
	for i, p := range failProviders {
		if p != provider {
			continue
		}
		for j, r := range failReasons {
			if r == reason {
				f.n[i][j].Add(1)
			}
		}
	}
}

// Failures returns the count for provider and reason (0 for unknown ones).
func (s *Service) Failures(provider, reason string) uint64 {
	for i, p := range failProviders {
		for j, r := range failReasons {
			if p == provider && r == reason {
				return s.fails.n[i][j].Load()
			}
		}
	}
	return 0
}

// noteReject counts an audited refusal by its event.
func (s *Service) noteReject(provider, event string) {
	if event == "fraud" {
		s.fails.add(provider, FailFraud)
		return
	}
	s.fails.add(provider, FailRejected)
}

// noteCallError counts a failed provider call; a call cut by our own
// shutdown or a caller's cancellation is not the provider's failure.
func (s *Service) noteCallError(ctx context.Context, provider string, err error) {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	s.fails.add(provider, FailProviderError)
}

// starsPaymentMethods are the Bot API methods that take part in a payment;
// others (getUpdates, sendMessage) are the bot's, not a payment's.
var starsPaymentMethods = map[string]bool{"sendInvoice": true, "createInvoiceLink": true,
	"answerPreCheckoutQuery": true, "refundStarPayment": true, "getStarTransactions": true}

// registerFailureMetrics adds usipipo_payment_failures_total{provider,reason}
// for every known pair, at zero until something fails.
func (s *Service) registerFailureMetrics(set *metrics.Set) {
	for i, p := range failProviders {
		for j, r := range failReasons {
			c := &s.fails.n[i][j]
			set.GetOrCreateGauge(`usipipo_payment_failures_total{provider="`+p+`",reason="`+r+`"}`,
				func() float64 { return float64(c.Load()) })
		}
	}
}
