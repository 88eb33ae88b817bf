package pay

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// qvaClient speaks QvaPay's merchant API v1. The app secret travels in the
// query string, so no error it returns carries the URL.
type qvaClient struct {
	base string
	hc   *http.Client
	// onError, when set, hears of every failed call (payment metrics).
	onError func(ctx context.Context, err error)
}

type qvaCredentials struct {
	AppID  string `json:"app_id"`
	Secret string `json:"app_secret"`
}

// qvaAmount is a QvaPay amount: a decimal string or number of dollars.
type qvaAmount int64 // cents

func (a *qvaAmount) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e9 || math.IsNaN(f) {
		return fmt.Errorf("qvapay amount %q: %w", s, ErrMismatch)
	}
	*a = qvaAmount(math.Round(f * 100))
	return nil
}

func dollars(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

type qvaInvoice struct {
	UUID     string `json:"transation_uuid"` // sic: QvaPay's spelling
	URL      string `json:"url"`
	RemoteID string `json:"remote_id"`
}

// QvaTransaction is QvaPay's view of a transaction (transactions/{uuid}).
type QvaTransaction struct {
	UUID     string    `json:"uuid"`
	AppID    string    `json:"app_id"`
	Amount   qvaAmount `json:"amount"`
	RemoteID string    `json:"remote_id"`
	Status   string    `json:"status"` // "pending", "paid", "cancelled"
}

func (q *qvaClient) get(ctx context.Context, method, path string, query url.Values, out any) error {
	err := q.fetch(ctx, method, path, query, out)
	if err != nil && q.onError != nil {
		q.onError(ctx, err)
	}
	return err
}

func (q *qvaClient) fetch(ctx context.Context, method, path string, query url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.base+path+"?"+query.Encode(), nil)
	if err != nil {
		return fmt.Errorf("qvapay %s: bad request", method)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := q.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("qvapay %s: %w", method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("qvapay %s: reading: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &APIError{Provider: "qvapay", Method: method, Status: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(out); err != nil {
		return &APIError{Provider: "qvapay", Method: method, Status: resp.StatusCode, Description: "response is not the expected JSON"}
	}
	return nil
}

func (q *qvaClient) createInvoice(ctx context.Context, c qvaCredentials, cents int64, description, remoteID string) (*qvaInvoice, error) {
	v := url.Values{"app_id": {c.AppID}, "app_secret": {c.Secret}, "amount": {dollars(cents)},
		"description": {description}, "remote_id": {remoteID}, "signed": {"1"}}
	var inv qvaInvoice
	if err := q.get(ctx, "create_invoice", "/api/v1/create_invoice", v, &inv); err != nil {
		return nil, err
	}
	if !validUUID(inv.UUID) || inv.URL == "" {
		return nil, &APIError{Provider: "qvapay", Method: "create_invoice", Status: 200, Description: "no invoice in the response"}
	}
	return &inv, nil
}

func (q *qvaClient) transaction(ctx context.Context, c qvaCredentials, uuid string) (*QvaTransaction, error) {
	var tx QvaTransaction
	v := url.Values{"app_id": {c.AppID}, "app_secret": {c.Secret}}
	if err := q.get(ctx, "transactions", "/api/v1/transactions/"+url.PathEscape(uuid), v, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

// validUUID accepts QvaPay's transaction ids: 8-64 characters of letters,
// digits and dashes.
func validUUID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

const settingQvaPay = "qvapay"

// SetQvaPayCredentials stores the QvaPay app id and secret sealed under the
// data key (the audit trail sees only the sealed blob).
func (s *Service) SetQvaPayCredentials(ctx context.Context, a Actor, appID, secret string) error {
	if appID == "" || secret == "" {
		return fmt.Errorf("qvapay app id and secret are required: %w", model.ErrInvalid)
	}
	plain, err := json.Marshal(qvaCredentials{AppID: appID, Secret: secret})
	if err != nil {
		return err
	}
	sealed, err := keyring.Seal(s.dataKey, s.rand, "setting", settingQvaPay, plain)
	if err != nil {
		return fmt.Errorf("sealing qvapay credentials: %w", err)
	}
	v, err := json.Marshal(map[string]string{"sealed": base64.StdEncoding.EncodeToString(sealed)})
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.PutSetting{Name: settingQvaPay, Value: v}, "")
}

func (s *Service) qvaCreds() (qvaCredentials, error) {
	var c qvaCredentials
	st, err := s.st.Setting(settingQvaPay)
	if errors.Is(err, model.ErrNotFound) {
		return c, fmt.Errorf("qvapay: %w", ErrNoProvider)
	}
	if err != nil {
		return c, err
	}
	var v struct{ Sealed string }
	if err := json.Unmarshal(st.Value, &v); err != nil {
		return c, fmt.Errorf("qvapay setting unreadable: %w", ErrNoProvider)
	}
	blob, err := base64.StdEncoding.DecodeString(v.Sealed)
	if err != nil {
		return c, fmt.Errorf("qvapay setting unreadable: %w", ErrNoProvider)
	}
	plain, err := keyring.Open(s.dataKey, "setting", settingQvaPay, blob)
	if err != nil {
		return c, fmt.Errorf("qvapay credentials: %w", err)
	}
	if err := json.Unmarshal(plain, &c); err != nil {
		return c, fmt.Errorf("qvapay credentials unreadable: %w", ErrNoProvider)
	}
	return c, nil
}

// ConfirmQvaPay settles the payment of a QvaPay transaction after asking
// QvaPay about it: nothing the caller says is trusted but the uuid to ask
// about. It grants only when the transaction belongs to our app, is paid,
// names (remote_id) a pending QvaPay payment of ours whose invoice it is,
// and pays its full amount; otherwise it audits why and grants nothing.
// claimedRemote, when not empty, must match too. It reports whether this call
// granted; errors are transient (QvaPay or the store unreachable).
func (s *Service) ConfirmQvaPay(ctx context.Context, uuid, claimedRemote string) (bool, error) {
	if !validUUID(uuid) {
		s.reject(ctx, ActorQvaPay, store.RejectPayment{Provider: QvaPay, Event: "callback", Why: "malformed transaction id"})
		return false, nil
	}
	creds, err := s.qvaCreds()
	if err != nil {
		return false, err
	}
	tx, err := s.qva.transaction(ctx, creds, uuid)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusUnprocessableEntity) {
		s.reject(ctx, ActorQvaPay, store.RejectPayment{Provider: QvaPay, Event: "callback", Ref: uuid, Why: "unknown transaction"})
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p, why := s.matchQva(tx, uuid, claimedRemote, creds.AppID)
	if why != "" {
		r := store.RejectPayment{Provider: QvaPay, Event: "callback", Ref: uuid, Why: why}
		if p != nil {
			r.UserID, r.PaymentID = p.UserID, p.ID
		}
		s.reject(ctx, ActorQvaPay, r)
		return false, nil
	}
	return s.settle(ctx, ActorQvaPay, p, uuid, p.Amount, USD)
}

func (s *Service) matchQva(tx *QvaTransaction, uuid, claimedRemote, appID string) (*model.Payment, string) {
	if tx.UUID != uuid {
		return nil, "transaction id differs from the one asked about"
	}
	if tx.AppID != appID {
		return nil, "transaction of another app"
	}
	if claimedRemote != "" && claimedRemote != tx.RemoteID {
		return nil, "callback remote_id differs from the transaction's"
	}
	if !model.ValidID(tx.RemoteID) {
		return nil, "transaction names no payment of ours"
	}
	p, err := s.st.Payment(tx.RemoteID)
	if err != nil {
		return nil, "transaction names an unknown payment"
	}
	switch {
	case p.Provider != QvaPay || p.Payload != uuid:
		return p, "transaction is not this payment's invoice"
	case tx.Status != "paid":
		return p, fmt.Sprintf("transaction is %q, not paid", tx.Status)
	case int64(tx.Amount) != p.Amount:
		return p, fmt.Sprintf("paid %s USD for %s USD", dollars(int64(tx.Amount)), dollars(p.Amount))
	}
	return p, ""
}

// QvaPayCallback is the handler of QvaPay's callback (GET with id and
// remote_id), for the public listener. It answers 200 once the transaction
// was judged (granted or refused and audited) and 503 when QvaPay or the
// store could not be asked, so QvaPay calls again. The route is public and
// unsigned, so callbacks are rate-limited (20/s, bursts of 50) before any
// query or audit write: a flood costs neither QvaPay quota nor disk.
func (s *Service) QvaPayCallback() fiber.Handler {
	lim := rate.NewLimiter(20, 50)
	return func(c *fiber.Ctx) error {
		if !lim.Allow() {
			return c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{"status": "retry"})
		}
		id, remote := c.Query("id"), c.Query("remote_id")
		if id == "" {
			id = c.Query("transaction_uuid")
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), 20*time.Second)
		defer cancel()
		if _, err := s.ConfirmQvaPay(ctx, id, remote); err != nil {
			s.log.Warn("qvapay_callback_retry", "service", "pay", "details", err.Error())
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "retry"})
		}
		return c.JSON(fiber.Map{"status": "ok"})
	}
}

// SweepResult counts what a QvaPay sweep changed.
type SweepResult struct {
	Checked, Settled, Expired int
}

// qvaLateWindow is how long after its TTL an invoice is still asked about.
const qvaLateWindow = 24 * time.Hour

// SweepQvaPay asks QvaPay about QvaPay invoices still open (and expired ones
// for a day after) and settles those paid whose callback never came; pending
// ones past the catalogue's invoice TTL are expired.
func (s *Service) SweepQvaPay(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	creds, err := s.qvaCreds()
	if err != nil {
		return res, err
	}
	ttl := time.Duration(s.Catalogue().InvoiceTTLMinutes) * time.Minute
	now := s.now()
	// Ids sort by creation time: start the scan at the oldest that matters.
	from, err := model.NewID(now.Add(-ttl-qvaLateWindow), zeroReader{})
	if err != nil {
		return res, err
	}
	pg := store.Page{After: base64.RawURLEncoding.EncodeToString([]byte(from)), Limit: store.MaxLimit}
	for {
		ps, next, err := s.st.Payments("", pg)
		if err != nil {
			return res, err
		}
		for i := range ps {
			p := &ps[i]
			if p.Provider != QvaPay || (p.Status != model.PayPending && p.Status != model.PayExpired) || !validUUID(p.Payload) {
				continue
			}
			res.Checked++
			tx, err := s.qva.transaction(ctx, creds, p.Payload)
			if err != nil {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status >= 500 {
					return res, err
				}
			}
			if err == nil && tx.Status == "paid" {
				if _, why := s.matchQva(tx, p.Payload, "", creds.AppID); why == "" {
					granted, err := s.settle(ctx, ActorQvaPay, p, p.Payload, p.Amount, USD)
					if err != nil {
						return res, err
					}
					if granted {
						res.Settled++
					}
					continue
				}
			}
			if p.Status == model.PayPending && now.Sub(p.Created) >= ttl {
				if err := s.do(ctx, s.meta(ActorSystem), store.ExpirePayment{PaymentID: p.ID}, p.UserID); err == nil {
					res.Expired++
				} else if isTransient(err) {
					return res, err
				}
			}
		}
		if next == "" {
			return res, nil
		}
		pg.After = next
	}
}

// ExpireStars expires pending Stars invoices past the catalogue's TTL (a late
// successful_payment still settles an expired one).
func (s *Service) ExpireStars(ctx context.Context) (int, error) {
	ttl := time.Duration(s.Catalogue().InvoiceTTLMinutes) * time.Minute
	now := s.now()
	from, err := model.NewID(now.Add(-ttl-qvaLateWindow), zeroReader{})
	if err != nil {
		return 0, err
	}
	n := 0
	pg := store.Page{After: base64.RawURLEncoding.EncodeToString([]byte(from)), Limit: store.MaxLimit}
	for {
		ps, next, err := s.st.Payments("", pg)
		if err != nil {
			return n, err
		}
		for _, p := range ps {
			if p.Provider == Stars && p.Status == model.PayPending && now.Sub(p.Created) >= ttl {
				if err := s.do(ctx, s.meta(ActorSystem), store.ExpirePayment{PaymentID: p.ID}, p.UserID); err == nil {
					n++
				}
			}
		}
		if next == "" {
			return n, nil
		}
		pg.After = next
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
