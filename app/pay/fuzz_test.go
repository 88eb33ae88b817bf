package pay

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/usipipo/usipipo/store/keyring"
)

func FuzzDecodeUpdate(f *testing.F) {
	w := newWorld(f)
	uid, tg := w.user("")
	_, payload := w.starsInvoice(uid, Product{Kind: KindCredits, Qty: 100})
	f.Add(mustJSON(withID(paidUpdate(tg, 100, payload, "c"))))
	f.Add(mustJSON(withID(preCheckoutUpdate("q", tg, 100, payload))))
	f.Add(mustJSON(withID(refundedUpdate(tg, 100, payload, "c"))))
	f.Add([]byte(`{"update_id":5,"callback_query":{"id":"x","from":{"id":9}}}`))
	f.Add([]byte(`{"update_id":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		u, err := DecodeUpdate(raw)
		if err != nil {
			return
		}
		if u.ID <= 0 || !json.Valid(u.Raw) {
			t.Fatalf("accepted update %d", u.ID)
		}
		_ = shardOf(u)
		if q := u.PreCheckoutQuery; q != nil {
			w.svc.checkStars(q.InvoicePayload, q.From.ID, q.Currency, q.TotalAmount, true)
		}
		if m := u.Message; m != nil && m.SuccessfulPayment != nil {
			sp := m.SuccessfulPayment
			if p, err := w.svc.checkStars(sp.InvoicePayload, tg, sp.Currency, sp.TotalAmount, false); err == nil &&
				(sp.InvoicePayload != payload || sp.TotalAmount != 100 || sp.Currency != XTR || p.UserID != uid) {
				t.Fatalf("accepted %+v", sp)
			}
		}
	})
}

func withID(m map[string]any) map[string]any {
	m["update_id"] = 77
	return m
}

func FuzzParsePayload(f *testing.F) {
	var dk keyring.Key
	dk[0] = 1
	s := &Service{payloadKey: deriveKey(dk, "usipipo/pay/payload/v1")}
	good := s.Payload(Stars, "01kbcdefghjkmnpqrstvwxyz01")
	f.Add(good)
	f.Add(good[:len(good)-1] + "A")
	f.Add("x.y")
	f.Add("")
	f.Fuzz(func(t *testing.T, payload string) {
		id, err := s.ParsePayload(Stars, payload)
		if err == nil && s.Payload(Stars, id) != payload {
			t.Fatalf("accepted %q as %s", payload, id)
		}
		if err == nil && payload != good {
			t.Fatalf("forged payload %q accepted", payload)
		}
	})
}

func FuzzQvaTransaction(f *testing.F) {
	f.Add([]byte(`{"uuid":"9a0f3c1e-0000","app_id":"a","amount":"2.99","remote_id":"r","status":"paid"}`))
	f.Add([]byte(`{"amount":1e308}`))
	f.Add([]byte(`{"amount":"-1"}`))
	f.Add([]byte(`{"amount":"NaN"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tx QvaTransaction
		if json.Unmarshal(raw, &tx) == nil && (tx.Amount < 0 || tx.Amount > 1e11) {
			t.Fatalf("amount %d accepted", tx.Amount)
		}
	})
}

// FuzzDecodeResponse feeds the Bot API answer decoder arbitrary bytes: it
// never panics, accepts exactly the answers that say "ok": true, and
// reports every other answer as an *APIError.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"result":{"message_id":1}}`,
		`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`,
		`{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
		`{"ok":false}`, `<html>502</html>`, ``, `null`, `{"ok":"true"}`,
	} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		err := decodeResponse("sendMessage", status, raw, nil)
		var probe struct {
			OK bool `json:"ok"`
		}
		ok := json.Unmarshal(raw, &probe) == nil && probe.OK
		if (err == nil) != ok {
			t.Fatalf("decode(%q) = %v, ok %v", raw, err, ok)
		}
		if err != nil {
			if _, isAPI := errors.AsType[*APIError](err); !isAPI {
				t.Fatalf("decode(%q) = %T", raw, err)
			}
		}
	})
}
