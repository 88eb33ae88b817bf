// Package bottest is a local stand-in for the Telegram Bot API for tests:
// the real method names, JSON and multipart bodies and result shapes. It
// records what the bot sends, per chat, and serves scripted updates through
// getUpdates.
package bottest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Button is an inline keyboard button the bot sent.
type Button struct {
	Text string `json:"text"`
	Data string `json:"callback_data,omitempty"`
	URL  string `json:"url,omitempty"`
}

// File is an uploaded document or photo.
type File struct {
	Name string
	Data []byte
}

// Event is one call the bot made.
type Event struct {
	Seq       int
	Method    string
	Chat      int64
	MessageID int64
	Text      string // text, or a file's caption
	Buttons   [][]Button
	File      *File
	Params    map[string]any
}

// Server is the fake Bot API.
type Server struct {
	Token string
	URL   string

	srv *http.Server

	mu        sync.Mutex
	cond      *sync.Cond
	events    []Event
	updates   []json.RawMessage
	nextID    int64 // next update_id
	nextMsg   int64
	refunded  map[string]bool // telegram_payment_charge_id
	confirmed int64
	closed    bool
	// Latency, if set, is added to every call but getUpdates.
	Latency time.Duration
	// Hook, if set before use, sees every recorded call (outside the lock).
	Hook func(Event)
}

// New starts a fake Bot API on 127.0.0.1 for token; Close stops it.
func New(token string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Token: token, URL: "http://" + ln.Addr().String(), nextID: 1, nextMsg: 100}
	s.cond = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.srv.Close()
}

func reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func fail(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": code, "description": desc})
}

// params reads a JSON or multipart call's parameters and files.
func params(r *http.Request) (map[string]any, *File, error) {
	p := map[string]any{}
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "multipart/form-data") {
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			return nil, nil, err
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
		for _, fhs := range r.MultipartForm.File {
			f, err := fhs[0].Open()
			if err != nil {
				return nil, nil, err
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, nil, err
			}
			return p, &File{Name: fhs[0].Filename, Data: b}, nil
		}
		return p, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, nil, err
		}
	}
	return p, nil, nil
}

func num(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func str(v any) string { s, _ := v.(string); return s }

func buttons(v any) [][]Button {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	var m struct {
		InlineKeyboard [][]Button `json:"inline_keyboard"`
	}
	json.Unmarshal(b, &m)
	return m.InlineKeyboard
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	prefix := "/bot" + s.Token + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		fail(w, 401, "Unauthorized")
		return
	}
	method := strings.TrimPrefix(r.URL.Path, prefix)
	p, file, err := params(r)
	if err != nil {
		fail(w, 400, "Bad Request: "+err.Error())
		return
	}
	if method == "getUpdates" {
		s.getUpdates(r.Context(), w, p)
		return
	}
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	ev := Event{Method: method, Chat: num(p["chat_id"]), Text: str(p["text"]), Buttons: buttons(p["reply_markup"]), File: file, Params: p}
	switch method {
	case "getMe":
		reply(w, map[string]any{"id": 1, "is_bot": true, "first_name": "uSipipo", "username": "usipipo_test_bot"})
		return
	case "sendMessage", "sendDocument", "sendPhoto", "sendInvoice":
		if method != "sendMessage" {
			ev.Text = str(p["caption"])
		}
		if ev.Chat == 0 {
			fail(w, 400, "Bad Request: chat_id is empty")
			return
		}
		if method == "sendMessage" && ev.Text == "" {
			fail(w, 400, "Bad Request: message text is empty")
			return
		}
		if method == "sendMessage" && len([]rune(ev.Text)) > 4096 {
			fail(w, 400, "Bad Request: message is too long")
			return
		}
		for _, row := range ev.Buttons {
			for _, b := range row {
				if len(b.Data) > 64 {
					fail(w, 400, "Bad Request: BUTTON_DATA_INVALID")
					return
				}
			}
		}
		s.mu.Lock()
		s.nextMsg++
		ev.MessageID = s.nextMsg
		s.record(ev)
		s.mu.Unlock()
		s.hook(ev)
		reply(w, map[string]any{"message_id": ev.MessageID, "date": time.Now().Unix(), "chat": map[string]any{"id": ev.Chat, "type": "private"}})
		return
	case "editMessageText":
		ev.MessageID = num(p["message_id"])
	case "createInvoiceLink":
		s.mu.Lock()
		s.record(ev)
		s.mu.Unlock()
		reply(w, "https://t.me/$invoice-"+str(p["payload"])[:8])
		return
	case "refundStarPayment":
		s.mu.Lock()
		charge := str(p["telegram_payment_charge_id"])
		again := s.refunded[charge]
		if s.refunded == nil {
			s.refunded = map[string]bool{}
		}
		s.refunded[charge] = true
		s.record(ev)
		s.mu.Unlock()
		if again {
			fail(w, 400, "Bad Request: CHARGE_ALREADY_REFUNDED")
			return
		}
		reply(w, true)
		return
	case "getStarTransactions":
		reply(w, map[string]any{"transactions": []any{}})
		return
	}
	s.mu.Lock()
	s.record(ev)
	s.mu.Unlock()
	s.hook(ev)
	reply(w, true)
}

func (s *Server) hook(ev Event) {
	if s.Hook != nil {
		s.Hook(ev)
	}
}

func (s *Server) record(ev Event) {
	ev.Seq = len(s.events)
	s.events = append(s.events, ev)
	s.cond.Broadcast()
}

// getUpdates serves queued updates from the offset, holding the call up to
// its timeout (at most 1 s here) while there are none.
func (s *Server) getUpdates(ctx context.Context, w http.ResponseWriter, p map[string]any) {
	offset := num(p["offset"])
	timeout := time.Duration(min(num(p["timeout"]), 1)) * time.Second
	deadline := time.Now().Add(timeout)
	stop := context.AfterFunc(ctx, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer stop()
	timer := time.AfterFunc(timeout, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset > s.confirmed {
		s.confirmed = offset
	}
	for {
		var out []json.RawMessage
		for _, u := range s.updates {
			var h struct {
				ID int64 `json:"update_id"`
			}
			json.Unmarshal(u, &h)
			if h.ID >= offset {
				out = append(out, u)
			}
		}
		if len(out) > 0 || s.closed || ctx.Err() != nil || !time.Now().Before(deadline) {
			reply(w, out)
			return
		}
		s.cond.Wait()
	}
}

// Enqueue queues an update (built by the update helpers) for getUpdates and
// returns its update_id.
func (s *Server) Enqueue(build func(id int64) json.RawMessage) int64 {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.updates = append(s.updates, build(id))
	s.cond.Broadcast()
	s.mu.Unlock()
	return id
}

// Confirmed is the highest offset getUpdates has been called with.
func (s *Server) Confirmed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// Events returns the calls recorded from seq on.
func (s *Server) Events(from int) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from >= len(s.events) {
		return nil
	}
	return append([]Event(nil), s.events[from:]...)
}

// Len is the number of calls recorded.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// WaitFor waits until a call from seq on satisfies match, and returns it.
func (s *Server) WaitFor(from int, timeout time.Duration, match func(Event) bool) (Event, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for i := from; i < len(s.events); i++ {
			if match(s.events[i]) {
				return s.events[i], nil
			}
		}
		if !time.Now().Before(deadline) || s.closed {
			return Event{}, fmt.Errorf("no matching Bot API call within %s", timeout)
		}
		s.cond.Wait()
	}
}
