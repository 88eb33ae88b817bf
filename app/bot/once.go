package bot

import (
	"context"
	"strconv"

	"github.com/usipipo/usipipo/app/pay"
)

// onceKey names one side effect of the Telegram update being handled, so
// that handling the same update again (the intake re-hands an update until
// its done-receipt is durable, e.g. after a crash) repeats nothing: the
// service applies a command once per key and returns the first result. The
// sender and the action are part of the key so that update ids, which
// Telegram may restart after a long pause, collide only for the same user
// doing the same thing. Outside the intake there is no update: "" (no key).
func onceKey(ctx context.Context, tg int64, action string) string {
	id, ok := pay.UpdateID(ctx)
	if !ok {
		return ""
	}
	return "tg-upd:" + strconv.FormatInt(id, 10) + ":" + strconv.FormatInt(tg, 10) + ":" + action
}
