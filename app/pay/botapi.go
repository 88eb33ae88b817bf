package pay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
)

// BotAPI calls the Telegram Bot API over plain HTTPS with JSON bodies. The
// token is part of every URL, so transport errors are reported without the
// URL.
type BotAPI struct {
	base  string // e.g. https://api.telegram.org/bot<token>/
	hc    *http.Client
	token string
	// onError, when set, hears of every failed call (payment metrics).
	onError func(ctx context.Context, method string, err error)
}

// NewBotAPI returns a client of the Bot API at baseURL (DefaultBotAPIURL or
// a local stand-in) for a bot token.
func NewBotAPI(baseURL, token string, hc *http.Client) *BotAPI {
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	return &BotAPI{base: strings.TrimRight(baseURL, "/") + "/bot" + token + "/", hc: hc, token: token}
}

// maxResponse bounds a Bot API response body.
const maxResponse = 8 << 20

// Call invokes method with params (JSON-encoded) and decodes its result into
// out (nil: ignored). A refusal is an *APIError.
func (b *BotAPI) Call(ctx context.Context, method string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		err = fmt.Errorf("telegram %s: encoding: %w", method, err)
	} else {
		err = b.post(ctx, method, "application/json", bytes.NewReader(body), out)
	}
	b.failed(ctx, method, err)
	return err
}

// Upload sends a file with method (sendDocument, sendPhoto…) as
// multipart/form-data: the text fields, then r as fileField named filename,
// streamed rather than held in memory. r is the caller's again on return.
func (b *BotAPI) Upload(ctx context.Context, method string, fields map[string]string, fileField, filename string, r io.Reader, out any) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		pw.CloseWithError(writeForm(mw, fields, fileField, filename, r))
	}()
	err := b.post(ctx, method, mw.FormDataContentType(), pr, out)
	pr.CloseWithError(errors.New("request finished")) // unblocks the writer if the request ended early
	<-wrote
	b.failed(ctx, method, err)
	return err
}

func (b *BotAPI) failed(ctx context.Context, method string, err error) {
	if err != nil && b.onError != nil {
		b.onError(ctx, method, err)
	}
}

// writeForm writes the fields in name order, then the file.
func writeForm(mw *multipart.Writer, fields map[string]string, fileField, filename string, r io.Reader) error {
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if err := mw.WriteField(k, fields[k]); err != nil {
			return err
		}
	}
	fw, err := mw.CreateFormFile(fileField, filename)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, r); err != nil {
		return fmt.Errorf("reading the file: %w", err)
	}
	return mw.Close()
}

func (b *BotAPI) post(ctx context.Context, method, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+method, body)
	if err != nil {
		return fmt.Errorf("telegram %s: bad request", method)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, scrubURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("telegram %s: reading: %w", method, scrubURL(err))
	}
	return decodeResponse(method, resp.StatusCode, raw, out)
}

// decodeResponse reads a Bot API answer: its result into out (nil: ignored)
// for "ok": true, else the refusal as *APIError, with retry_after when flood
// control asks and the HTTP status when the answer names no error code.
func decodeResponse(method string, status int, raw []byte, out any) error {
	var ok struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil {
		return &APIError{Provider: "telegram", Method: method, Status: status, Description: "response is not JSON"}
	}
	if ok.OK { // an odd field elsewhere does not undo what was done
		if out != nil {
			if err := json.Unmarshal(ok.Result, out); err != nil {
				return fmt.Errorf("telegram %s: decoding result: %w", method, err)
			}
		}
		return nil
	}
	var r struct {
		ErrorCode   int    `json:"error_code"`
		Description string `json:"description"`
		Parameters  *struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	_ = json.Unmarshal(raw, &r) // details are best effort: it is a refusal either way
	e := &APIError{Provider: "telegram", Method: method, Status: r.ErrorCode, Description: r.Description}
	if e.Status == 0 {
		e.Status = status
	}
	if r.Parameters != nil {
		e.RetryAfter = r.Parameters.RetryAfter
	}
	return e
}

// scrubURL drops the URL (which holds the token) from a transport error.
func scrubURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil && strings.Contains(err.Error(), "/bot") {
			return inner
		}
	}
	return err
}

// Update is one Telegram update. Raw keeps its JSON as received, for the
// handler of non-payment updates.
type Update struct {
	ID               int64             `json:"update_id"`
	Message          *Message          `json:"message,omitempty"`
	PreCheckoutQuery *PreCheckoutQuery `json:"pre_checkout_query,omitempty"`
	Raw              json.RawMessage   `json:"-"`
}

// User is a Telegram user.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a Telegram chat.
type Chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type,omitempty"`
}

// Message is the part of a Telegram message payments need.
type Message struct {
	MessageID         int64              `json:"message_id"`
	From              *User              `json:"from,omitempty"`
	Chat              Chat               `json:"chat"`
	Date              int64              `json:"date,omitempty"`
	Text              string             `json:"text,omitempty"`
	SuccessfulPayment *SuccessfulPayment `json:"successful_payment,omitempty"`
	RefundedPayment   *RefundedPayment   `json:"refunded_payment,omitempty"`
}

// SuccessfulPayment is Telegram's confirmation of a charge.
type SuccessfulPayment struct {
	Currency                string `json:"currency"`
	TotalAmount             int64  `json:"total_amount"`
	InvoicePayload          string `json:"invoice_payload"`
	TelegramPaymentChargeID string `json:"telegram_payment_charge_id"`
	ProviderPaymentChargeID string `json:"provider_payment_charge_id"`
}

// RefundedPayment is Telegram's notice of a refund.
type RefundedPayment struct {
	Currency                string `json:"currency"`
	TotalAmount             int64  `json:"total_amount"`
	InvoicePayload          string `json:"invoice_payload"`
	TelegramPaymentChargeID string `json:"telegram_payment_charge_id"`
	ProviderPaymentChargeID string `json:"provider_payment_charge_id,omitempty"`
}

// PreCheckoutQuery asks the bot to confirm a checkout within 10 seconds.
type PreCheckoutQuery struct {
	ID             string `json:"id"`
	From           User   `json:"from"`
	Currency       string `json:"currency"`
	TotalAmount    int64  `json:"total_amount"`
	InvoicePayload string `json:"invoice_payload"`
}

// LabeledPrice is one line of an invoice.
type LabeledPrice struct {
	Label  string `json:"label"`
	Amount int64  `json:"amount"`
}

// StarTransaction is one entry of getStarTransactions. For an incoming
// payment ID is the successful payment's telegram_payment_charge_id; for a
// refund, the original transaction's id.
type StarTransaction struct {
	ID       string              `json:"id"`
	Amount   int64               `json:"amount"`
	Date     int64               `json:"date"`
	Source   *TransactionPartner `json:"source,omitempty"`
	Receiver *TransactionPartner `json:"receiver,omitempty"`
}

// TransactionPartner is the other side of a Star transaction.
type TransactionPartner struct {
	Type           string `json:"type"` // "user", "fragment", …
	User           *User  `json:"user,omitempty"`
	InvoicePayload string `json:"invoice_payload,omitempty"`
}

// DecodeUpdate parses one update as received, keeping its raw JSON.
func DecodeUpdate(raw []byte) (*Update, error) {
	var u Update
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("decoding update: %w", err)
	}
	if u.ID <= 0 {
		return nil, fmt.Errorf("update without update_id: %w", ErrMismatch)
	}
	u.Raw = append(json.RawMessage(nil), raw...)
	return &u, nil
}

// Handler processes the updates that are not payments' (the bot's
// conversations). It is called at least once per update: once its call
// returns nil the update is receipted and never handed over again; an error
// leaves it pending to be retried (and resumed after a restart).
type Handler interface {
	HandleUpdate(ctx context.Context, u *Update) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, u *Update) error

// HandleUpdate implements Handler.
func (f HandlerFunc) HandleUpdate(ctx context.Context, u *Update) error { return f(ctx, u) }
