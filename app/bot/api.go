package bot

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app/pay"
)

// api sends the bot's replies through pay.BotAPI.
type api struct {
	json *pay.BotAPI
}

func newAPI(baseURL, token string, hc *http.Client) *api {
	return &api{json: pay.NewBotAPI(baseURL, token, hc)}
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
	fields := map[string]string{"chat_id": strconv.FormatInt(chat, 10)}
	if caption != "" {
		fields["caption"] = caption
	}
	return a.json.Upload(ctx, method, fields, field, filename, bytes.NewReader(data), nil)
}
