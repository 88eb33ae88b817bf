package bottest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// User is a Telegram user the test plays.
type User struct {
	ID        int64
	FirstName string
	Username  string
	Lang      string // language_code
}

func (u User) json() map[string]any {
	return map[string]any{"id": u.ID, "is_bot": false, "first_name": u.FirstName, "username": u.Username, "language_code": u.Lang}
}

func chat(u User) map[string]any {
	return map[string]any{"id": u.ID, "type": "private", "first_name": u.FirstName}
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Text is a message from u.
func Text(u User, text string) func(id int64) json.RawMessage {
	return func(id int64) json.RawMessage {
		msg := map[string]any{"message_id": id + 10000, "from": u.json(), "chat": chat(u), "date": time.Now().Unix(), "text": text}
		if strings.HasPrefix(text, "/") {
			n := strings.IndexByte(text, ' ')
			if n < 0 {
				n = len(text)
			}
			msg["entities"] = []any{map[string]any{"type": "bot_command", "offset": 0, "length": n}}
		}
		return raw(map[string]any{"update_id": id, "message": msg})
	}
}

// Press is u pressing an inline button of a message the bot sent.
func Press(u User, msgID int64, data string) func(id int64) json.RawMessage {
	return func(id int64) json.RawMessage {
		return raw(map[string]any{"update_id": id, "callback_query": map[string]any{
			"id": fmt.Sprintf("cb%d", id), "from": u.json(), "chat_instance": "1", "data": data,
			"message": map[string]any{"message_id": msgID, "chat": chat(u), "date": time.Now().Unix(), "text": "…"},
		}})
	}
}

// PreCheckout is Telegram asking to confirm u's checkout of an invoice.
func PreCheckout(u User, currency string, amount int64, payload string) func(id int64) json.RawMessage {
	return func(id int64) json.RawMessage {
		return raw(map[string]any{"update_id": id, "pre_checkout_query": map[string]any{
			"id": fmt.Sprintf("pcq%d", id), "from": u.json(), "currency": currency, "total_amount": amount, "invoice_payload": payload}})
	}
}

// Paid is Telegram's successful_payment message for u.
func Paid(u User, currency string, amount int64, payload, charge string) func(id int64) json.RawMessage {
	return func(id int64) json.RawMessage {
		return raw(map[string]any{"update_id": id, "message": map[string]any{
			"message_id": id + 10000, "from": u.json(), "chat": chat(u), "date": time.Now().Unix(),
			"successful_payment": map[string]any{"currency": currency, "total_amount": amount, "invoice_payload": payload,
				"telegram_payment_charge_id": charge, "provider_payment_charge_id": ""}}})
	}
}

// FindButton returns the callback data (or URL) of the first button whose
// text contains text.
func (e Event) FindButton(text string) (Button, bool) {
	for _, row := range e.Buttons {
		for _, b := range row {
			if strings.Contains(b.Text, text) {
				return b, true
			}
		}
	}
	return Button{}, false
}
