package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBot is a local stand-in for the Telegram Bot API: sendMessage (JSON)
// and sendDocument (multipart/form-data) with the real result and error
// shapes, flood control (429 with parameters.retry_after) and chats that
// blocked the bot (403).
type fakeBot struct {
	t     testing.TB
	token string
	url   string
	unit  time.Duration // one second of retry_after

	mu        sync.Mutex
	msgs      []fakeMsg
	docs      []fakeDoc
	blocked   map[int64]bool
	storms    map[int]bool // request numbers (1-based) that start a flood wait
	retry     int          // retry_after announced in a storm
	floodTill time.Time
	requests  int
	floods    int         // 429 responses
	fail5xx   int         // answer this many next requests with 502
	onMessage func(n int) // called (outside the lock) after each delivered message, with the count
}

type fakeMsg struct {
	Chat int64
	Text string
	At   time.Time // when the request arrived
}

type fakeDoc struct {
	Chat    int64
	Name    string
	Caption string
	Body    []byte
}

func newFakeBot(t testing.TB, unit time.Duration) *fakeBot {
	f := &fakeBot{t: t, token: "4242:FAKE-token", unit: unit, blocked: map[int64]bool{}, storms: map[int]bool{}, retry: 1}
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

func (f *fakeBot) reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (f *fakeBot) fail(w http.ResponseWriter, code int, desc string, params map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	json.NewEncoder(w).Encode(body)
}

func (f *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+f.token+"/")
	if !ok {
		f.fail(w, 401, "Unauthorized", nil)
		return
	}
	var chat int64
	var text string
	var doc *fakeDoc
	switch method {
	case "sendMessage":
		var in struct {
			ChatID int64  `json:"chat_id"`
			Text   string `json:"text"`
		}
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&in) != nil {
			f.fail(w, 400, "Bad Request: can't parse JSON", nil)
			return
		}
		if in.Text == "" {
			f.fail(w, 400, "Bad Request: message text is empty", nil)
			return
		}
		chat, text = in.ChatID, in.Text
	case "sendDocument":
		d, err := parseDocument(r)
		if err != nil {
			f.fail(w, 400, "Bad Request: "+err.Error(), nil)
			return
		}
		chat, doc = d.Chat, d
	default:
		f.fail(w, 404, "Not Found: method not found", nil)
		return
	}
	f.mu.Lock()
	f.requests++
	if f.fail5xx > 0 {
		f.fail5xx--
		f.mu.Unlock()
		f.fail(w, 502, "Bad Gateway", nil)
		return
	}
	if f.storms[f.requests] && !at.Before(f.floodTill) {
		f.floodTill = at.Add(time.Duration(f.retry) * f.unit)
	}
	if at.Before(f.floodTill) {
		f.floods++
		left := int((f.floodTill.Sub(at) + f.unit - 1) / f.unit)
		f.mu.Unlock()
		f.fail(w, 429, "Too Many Requests: retry after "+strconv.Itoa(left), map[string]any{"retry_after": left})
		return
	}
	if f.blocked[chat] {
		f.mu.Unlock()
		f.fail(w, 403, "Forbidden: bot was blocked by the user", nil)
		return
	}
	if doc != nil {
		f.docs = append(f.docs, *doc)
	} else {
		f.msgs = append(f.msgs, fakeMsg{Chat: chat, Text: text, At: at})
	}
	count, hook := len(f.msgs), f.onMessage
	f.mu.Unlock()
	if hook != nil && doc == nil {
		hook(count)
	}
	f.reply(w, map[string]any{"message_id": count, "date": at.Unix(), "chat": map[string]any{"id": chat, "type": "private"}})
}

func parseDocument(r *http.Request) (*fakeDoc, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("want multipart/form-data")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	d := &fakeDoc{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		switch p.FormName() {
		case "chat_id":
			d.Chat, _ = strconv.ParseInt(string(b), 10, 64)
		case "caption":
			d.Caption = string(b)
		case "document":
			d.Name, d.Body = p.FileName(), b
		}
	}
	if d.Chat == 0 || d.Name == "" {
		return nil, fmt.Errorf("chat_id and document are required")
	}
	return d, nil
}

func (f *fakeBot) messages() []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMsg(nil), f.msgs...)
}

func (f *fakeBot) documents() []fakeDoc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeDoc(nil), f.docs...)
}

func (f *fakeBot) to(chat int64) []string {
	var out []string
	for _, m := range f.messages() {
		if m.Chat == chat {
			out = append(out, m.Text)
		}
	}
	return out
}

// checkRates fails the test if the arrivals break the limits: more than
// perWindow messages in any window, or two messages to one chat closer than
// gap. It counts, so it does not depend on how fast the machine is.
func checkRates(t *testing.T, msgs []fakeMsg, perWindow int, window, gap time.Duration) {
	t.Helper()
	msgs = slices.Clone(msgs)
	slices.SortFunc(msgs, func(a, b fakeMsg) int { return a.At.Compare(b.At) })
	for i := range msgs {
		n := 0
		for j := i; j < len(msgs) && msgs[j].At.Sub(msgs[i].At) < window; j++ {
			n++
		}
		if n > perWindow {
			t.Fatalf("%d messages within %v from message %d (limit %d)", n, window, i, perWindow)
		}
	}
	last := map[int64]time.Time{}
	for _, m := range msgs {
		if l, ok := last[m.Chat]; ok && m.At.Sub(l) < gap {
			t.Fatalf("chat %d got two messages %v apart (limit %v)", m.Chat, m.At.Sub(l), gap)
		}
		last[m.Chat] = m.At
	}
}
