package bot

import (
	"context"
	"encoding/json"
	"testing"

	tele "gopkg.in/telebot.v3"
)

// Callback data comes from clients: parsing never panics, and only data
// this bot signed for that user is accepted.
func FuzzCallbackData(f *testing.F) {
	b := &Bot{signKey: make([]byte, 32)}
	good := b.cbData(7, "key", "01m8j7aehmcx7g38caeav7ffhz")
	for _, s := range []string{good, "", "~", "a:b:c~", "menu~AAAAAAAAAA", good + "x"} {
		f.Add(int64(7), s)
	}
	f.Fuzz(func(t *testing.T, tg int64, data string) {
		action, args, ok := b.parseCB(tg, data)
		if ok && b.cbData(tg, action, args...) != data {
			t.Fatalf("accepted %q for %d, which this bot did not sign", data, tg)
		}
	})
}

// Updates are network bytes: reading one into a request never panics and
// never yields a request without a user and a chat.
func FuzzRequest(f *testing.F) {
	b := &Bot{}
	for _, s := range []string{
		`{"update_id":1,"message":{"message_id":1,"from":{"id":5,"language_code":"en"},"chat":{"id":5,"type":"private"},"text":"/start abc"}}`,
		`{"update_id":2,"callback_query":{"id":"x","from":{"id":5},"data":"menu~x","message":{"message_id":3,"chat":{"id":5,"type":"private"}}}}`,
		`{"update_id":3,"callback_query":{"id":"x","from":{"id":5},"data":"menu~x"}}`,
		`{"update_id":4,"message":{"message_id":1,"chat":{"id":-100,"type":"supergroup"},"text":"/help"}}`,
		`{"update_id":5,"edited_message":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var up tele.Update
		if json.Unmarshal(raw, &up) != nil {
			return
		}
		r := b.requestFrom(context.Background(), &up)
		if r != nil && (r.from == nil || r.chat == 0 && r.cb == nil) {
			t.Fatalf("request without a user or chat: %+v", r)
		}
	})
}
