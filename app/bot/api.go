package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app/pay"
)

// api sends the bot's replies: JSON methods through pay.BotAPI, files as
// multipart uploads here (pay.BotAPI speaks JSON only).
type api struct {
	json *pay.BotAPI
	base string // <url>/bot<token>/ — never logged
	hc   *http.Client
}

func newAPI(baseURL, token string, hc *http.Client) *api {
	return &api{json: pay.NewBotAPI(baseURL, token, hc), base: strings.TrimRight(baseURL, "/") + "/bot" + token + "/", hc: hc}
}

func (a *api) call(ctx context.Context, method string, params, out any) error {
	return a.json.Call(ctx, method, params, out)
}

// sent is the part of a sent message the bot keeps.
type sent struct {
	MessageID int64 `json:"message_id"`
}

// send sends a text message, with an inline keyboard when kb is set.
func (a *api) send(ctx context.Context, chat int64, text string, kb *tele.ReplyMarkup) (int64, error) {
	p := map[string]any{"chat_id": chat, "text": text, "link_preview_options": map[string]any{"is_disabled": true}}
	if kb != nil {
		p["reply_markup"] = kb
	}
	var m sent
	err := a.call(ctx, "sendMessage", p, &m)
	return m.MessageID, err
}

// edit replaces the text (and keyboard) of a message the bot sent.
func (a *api) edit(ctx context.Context, chat, msgID int64, text string, kb *tele.ReplyMarkup) error {
	p := map[string]any{"chat_id": chat, "message_id": msgID, "text": text, "link_preview_options": map[string]any{"is_disabled": true}}
	if kb != nil {
		p["reply_markup"] = kb
	}
	err := a.call(ctx, "editMessageText", p, nil)
	var ae *pay.APIError
	if errors.As(err, &ae) && strings.Contains(ae.Description, "message is not modified") {
		return nil
	}
	return err
}

// answer answers a callback query (stops the client's spinner).
func (a *api) answer(ctx context.Context, id, text string) error {
	p := map[string]any{"callback_query_id": id}
	if text != "" {
		p["text"] = text
	}
	return a.call(ctx, "answerCallbackQuery", p, nil)
}

// upload sends a file: method sendDocument (field "document") or sendPhoto
// (field "photo").
func (a *api) upload(ctx context.Context, method, field string, chat int64, filename string, data []byte, caption string) error {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("chat_id", strconv.FormatInt(chat, 10))
	if caption != "" {
		w.WriteField("caption", caption)
	}
	fw, err := w.CreateFormFile(field, filename)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	fw.Write(data)
	if err := w.Close(); err != nil {
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+method, &body)
	if err != nil {
		return fmt.Errorf("telegram %s: bad request", method)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := a.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the token
		}
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: reading: %w", method, err)
	}
	var r struct {
		OK          bool   `json:"ok"`
		ErrorCode   int    `json:"error_code"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return &pay.APIError{Provider: "telegram", Method: method, Status: resp.StatusCode, Description: "response is not JSON"}
	}
	if !r.OK {
		return &pay.APIError{Provider: "telegram", Method: method, Status: r.ErrorCode, Description: r.Description}
	}
	return nil
}
