package pay

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBot is a local stand-in for the Telegram Bot API: the real method
// names, JSON bodies and result shapes, driven by the test.
type fakeBot struct {
	t     testing.TB
	token string
	srv   *http.Server
	url   string

	mu        sync.Mutex
	cond      *sync.Cond
	nextID    int64
	updates   []json.RawMessage // not yet confirmed by an offset
	confirmed int64
	invoices  []map[string]any
	answers   map[string]bool
	messages  []sentMessage
	refunds   []string
	txs       []StarTransaction
	calls     map[string]int
	failSend  bool
	onSend    func(chat int64) // called for every sendMessage, outside the lock
}

type sentMessage struct {
	Chat int64
	Text string
}

var botSeq int

func newFakeBot(t testing.TB) *fakeBot {
	botSeq++
	f := &fakeBot{t: t, token: fmt.Sprintf("%d:TEST-token-secret", 123456+botSeq), nextID: 1000, answers: map[string]bool{}, calls: map[string]int{}}
	f.cond = sync.NewCond(&f.mu)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(ln)
	t.Cleanup(func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func (f *fakeBot) reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (f *fakeBot) fail(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": code, "description": desc})
}

func (f *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	prefix := "/bot" + f.token + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		f.fail(w, 401, "Unauthorized")
		return
	}
	method := strings.TrimPrefix(r.URL.Path, prefix)
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.fail(w, 400, "Bad Request: can't parse JSON")
		return
	}
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
	num := func(k string) int64 {
		switch v := in[k].(type) {
		case float64:
			return int64(v)
		case string:
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
		return 0
	}
	switch method {
	case "getUpdates":
		f.getUpdates(w, r, num("offset"), num("limit"), num("timeout"))
	case "sendInvoice", "createInvoiceLink":
		if in["currency"] != "XTR" || in["provider_token"] != nil && in["provider_token"] != "" {
			f.fail(w, 400, "Bad Request: CURRENCY_INVALID")
			return
		}
		f.mu.Lock()
		f.invoices = append(f.invoices, in)
		f.mu.Unlock()
		if method == "createInvoiceLink" {
			f.reply(w, "https://t.me/$invoice"+fmt.Sprint(len(f.invoices)))
			return
		}
		f.reply(w, map[string]any{"message_id": 1, "chat": map[string]any{"id": num("chat_id")}, "date": 1})
	case "answerPreCheckoutQuery":
		f.mu.Lock()
		f.answers[fmt.Sprint(in["pre_checkout_query_id"])] = in["ok"] == true
		f.mu.Unlock()
		f.reply(w, true)
	case "sendMessage":
		f.mu.Lock()
		fail, hook := f.failSend, f.onSend
		if !fail {
			f.messages = append(f.messages, sentMessage{num("chat_id"), fmt.Sprint(in["text"])})
		}
		f.mu.Unlock()
		if hook != nil && !fail {
			hook(num("chat_id"))
		}
		if fail {
			f.fail(w, 502, "Bad Gateway")
			return
		}
		f.reply(w, map[string]any{"message_id": 2, "chat": map[string]any{"id": num("chat_id")}, "date": 1})
	case "refundStarPayment":
		charge := fmt.Sprint(in["telegram_payment_charge_id"])
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.refunds {
			if c == charge {
				f.fail(w, 400, "Bad Request: CHARGE_ALREADY_REFUNDED")
				return
			}
		}
		f.refunds = append(f.refunds, charge)
		f.txs = append(f.txs, StarTransaction{ID: charge, Date: time.Now().Unix(),
			Receiver: &TransactionPartner{Type: "user", User: &User{ID: num("user_id")}}})
		f.reply(w, true)
	case "getStarTransactions":
		f.mu.Lock()
		off, lim := int(num("offset")), int(num("limit"))
		if lim <= 0 || lim > 100 {
			lim = 100
		}
		out := []StarTransaction{}
		for i := off; i < len(f.txs) && len(out) < lim; i++ {
			out = append(out, f.txs[i])
		}
		f.mu.Unlock()
		f.reply(w, map[string]any{"transactions": out})
	default:
		f.fail(w, 404, "Not Found: method not found")
	}
}

func (f *fakeBot) getUpdates(w http.ResponseWriter, r *http.Request, offset, limit, timeout int64) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	f.mu.Lock()
	if offset > f.confirmed {
		f.confirmed = offset
	}
	for {
		var keep []json.RawMessage
		for _, u := range f.updates {
			var id struct {
				ID int64 `json:"update_id"`
			}
			json.Unmarshal(u, &id)
			if id.ID >= f.confirmed {
				keep = append(keep, u)
			}
		}
		f.updates = keep
		if len(keep) > 0 || time.Now().After(deadline) || r.Context().Err() != nil {
			break
		}
		t := time.AfterFunc(50*time.Millisecond, func() { f.mu.Lock(); f.cond.Broadcast(); f.mu.Unlock() })
		f.cond.Wait()
		t.Stop()
	}
	out := f.updates
	if int64(len(out)) > limit {
		out = out[:limit]
	}
	out = append([]json.RawMessage{}, out...)
	f.mu.Unlock()
	f.reply(w, out)
}

// push queues an update (its update_id assigned here) and returns its id.
func (f *fakeBot) push(body map[string]any) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	body["update_id"] = f.nextID
	b, _ := json.Marshal(body)
	f.updates = append(f.updates, b)
	f.cond.Broadcast()
	return f.nextID
}

func preCheckoutUpdate(id string, from int64, amount int64, payload string) map[string]any {
	return map[string]any{"pre_checkout_query": map[string]any{"id": id, "from": map[string]any{"id": from, "is_bot": false, "first_name": "U"},
		"currency": "XTR", "total_amount": amount, "invoice_payload": payload}}
}

func paidUpdate(from, amount int64, payload, charge string) map[string]any {
	return map[string]any{"message": map[string]any{"message_id": 7, "date": 1, "from": map[string]any{"id": from, "first_name": "U"},
		"chat": map[string]any{"id": from, "type": "private"},
		"successful_payment": map[string]any{"currency": "XTR", "total_amount": amount, "invoice_payload": payload,
			"telegram_payment_charge_id": charge, "provider_payment_charge_id": ""}}}
}

func refundedUpdate(from, amount int64, payload, charge string) map[string]any {
	return map[string]any{"message": map[string]any{"message_id": 8, "date": 1, "from": map[string]any{"id": from, "first_name": "U"},
		"chat": map[string]any{"id": from, "type": "private"},
		"refunded_payment": map[string]any{"currency": "XTR", "total_amount": amount, "invoice_payload": payload,
			"telegram_payment_charge_id": charge}}}
}

// charge records an incoming Star payment in the bot's transaction history.
func (f *fakeBot) charge(from, amount int64, payload, charge string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs = append(f.txs, StarTransaction{ID: charge, Amount: amount, Date: time.Now().Unix(),
		Source: &TransactionPartner{Type: "user", User: &User{ID: from}, InvoicePayload: payload}})
}

func (f *fakeBot) sent(chat int64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.messages {
		if m.Chat == chat {
			out = append(out, m.Text)
		}
	}
	return out
}

func (f *fakeBot) answer(id string) (ok, seen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok, seen = f.answers[id]
	return
}

func (f *fakeBot) confirmedOffset() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirmed
}

// fakeQva is a local stand-in for QvaPay's merchant API v1.
type fakeQva struct {
	url          string
	appID, appSc string
	mu           sync.Mutex
	txs          map[string]map[string]any
	n            int
	queries      int
}

func newFakeQva(t testing.TB) *fakeQva {
	f := &fakeQva{appID: "app-0001", appSc: "qva-secret-XYZ", txs: map[string]map[string]any{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeQva) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json")
	if q.Get("app_id") != f.appID || q.Get("app_secret") != f.appSc {
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"Unauthorized"}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/api/v1/create_invoice":
		f.n++
		uuid := fmt.Sprintf("9a0f3c1e-0000-4000-8000-%012d", f.n)
		f.txs[uuid] = map[string]any{"uuid": uuid, "app_id": f.appID, "amount": q.Get("amount"), "description": q.Get("description"),
			"remote_id": q.Get("remote_id"), "status": "pending", "created_at": "2026-11-01T12:00:00.000000Z"}
		json.NewEncoder(w).Encode(map[string]any{"app_id": f.appID, "amount": q.Get("amount"), "description": q.Get("description"),
			"remote_id": q.Get("remote_id"), "signed": q.Get("signed"), "transation_uuid": uuid,
			"url": "https://qvapay.com/pay/" + uuid, "signedUrl": "https://qvapay.com/pay/" + uuid + "?sig=x"})
	case strings.HasPrefix(r.URL.Path, "/api/v1/transactions/"):
		f.queries++
		tx, ok := f.txs[strings.TrimPrefix(r.URL.Path, "/api/v1/transactions/")]
		if !ok {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"Not found"}`))
			return
		}
		json.NewEncoder(w).Encode(tx)
	default:
		w.WriteHeader(404)
	}
}

func (f *fakeQva) set(uuid string, kv map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.txs[uuid] == nil {
		f.txs[uuid] = map[string]any{"uuid": uuid}
	}
	for k, v := range kv {
		f.txs[uuid][k] = v
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
