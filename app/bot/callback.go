package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"

	tele "gopkg.in/telebot.v3"
)

// Callback data is "action:arg:arg~mac": mac is 60 bits of HMAC-SHA256 over
// the Telegram user id and the rest, so a button works only for the user it
// was sent to and a client cannot make up data. Telegram limits the whole to
// 64 bytes; arguments are ids and short codes without ':' or '~'.
const (
	maxCallbackData = 64
	macLen          = 10 // base64 characters
)

func (b *Bot) mac(tg int64, payload string) string {
	m := hmac.New(sha256.New, b.signKey)
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(tg))
	m.Write(id[:])
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:macLen]
}

// cbData signs a callback for user tg.
func (b *Bot) cbData(tg int64, action string, args ...string) string {
	payload := strings.Join(append([]string{action}, args...), ":")
	return payload + "~" + b.mac(tg, payload)
}

// parseCB checks data's signature for user tg and splits it.
func (b *Bot) parseCB(tg int64, data string) (action string, args []string, ok bool) {
	if len(data) > maxCallbackData {
		return "", nil, false
	}
	i := strings.LastIndexByte(data, '~')
	if i < 0 {
		return "", nil, false
	}
	payload, mac := data[:i], data[i+1:]
	if !hmac.Equal([]byte(mac), []byte(b.mac(tg, payload))) {
		return "", nil, false
	}
	parts := strings.Split(payload, ":")
	return parts[0], parts[1:], true
}

// btn is an inline button carrying a signed callback.
func (r *req) btn(text, action string, args ...string) tele.InlineButton {
	return tele.InlineButton{Text: text, Data: r.b.cbData(r.tgID, action, args...)}
}

// urlBtn is an inline button opening a link.
func urlBtn(text, link string) tele.InlineButton { return tele.InlineButton{Text: text, URL: link} }

// kb makes an inline keyboard of rows.
func kb(rows ...[]tele.InlineButton) *tele.ReplyMarkup {
	var out [][]tele.InlineButton
	for _, r := range rows {
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	return &tele.ReplyMarkup{InlineKeyboard: out}
}

func row(bs ...tele.InlineButton) []tele.InlineButton { return bs }
