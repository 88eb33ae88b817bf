package notify

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/usipipo/usipipo/app/pay"
)

// telegram sends messages and documents through pay.BotAPI (the same
// --bot-api-url, refusals as *pay.APIError with retry_after, the token
// never in an error).
type telegram struct {
	api *pay.BotAPI
}

func newTelegram(apiURL, token string, hc *http.Client) *telegram {
	return &telegram{api: pay.NewBotAPI(apiURL, token, hc)}
}

// maxDocument is the Bot API's upload limit for sendDocument.
const maxDocument = 50 << 20

// sendMessage sends text to chat.
func (t *telegram) sendMessage(ctx context.Context, chat int64, text string) error {
	return t.api.Call(ctx, "sendMessage", map[string]any{"chat_id": chat, "text": text,
		"link_preview_options": map[string]bool{"is_disabled": true}}, nil)
}

// sendDocument uploads the document r (named name) to chat, streamed
// rather than held in memory.
func (t *telegram) sendDocument(ctx context.Context, chat int64, name string, r io.Reader, caption string) error {
	fields := map[string]string{"chat_id": strconv.FormatInt(chat, 10)}
	if caption != "" {
		fields["caption"] = caption
	}
	return t.api.Upload(ctx, "sendDocument", fields, "document", name, r, nil)
}
