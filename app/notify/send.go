package notify

import (
	"context"
	"errors"
	"net/textproto"
	"time"

	"github.com/usipipo/usipipo/app/pay"
)

// outcome is how one attempt to deliver ended.
type outcome int

const (
	outRetry   outcome = iota // not delivered; try again at a later scan
	outSent                   // delivered
	outBlocked                // the chat refused us for good (403)
	outFailed                 // a definite refusal; never retried
	outDone                   // a receipt already existed; nothing was sent
)

// transientTries bounds the attempts at a send that fails with a server or
// transport error before it is left for the next scan.
const transientTries = 3

// sendTelegram runs do (one Bot API request to chat) under the limiter,
// calling claim (the pending receipt) once a slot is granted,
// obeying 429 retry_after for as long as ctx lasts. The request itself runs
// on a context detached from ctx: once started it completes, so stopping
// the notifier never leaves a request whose fate is unknown.
func (n *Notifier) sendTelegram(ctx context.Context, chat int64, claim func() error, do func(ctx context.Context) error) outcome {
	for attempt := 1; ; attempt++ {
		release, err := n.lim.acquire(ctx, chat)
		if err != nil {
			return outRetry
		}
		if err := claim(); err != nil {
			release()
			n.log.Error("receipt_write_failed", "error", err.Error())
			return outRetry
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.SendTimeout)
		err = do(rctx)
		cancel()
		release()
		if err == nil {
			return outSent
		}
		apiErr, isAPI := errors.AsType[*pay.APIError](err)
		switch {
		case isAPI && apiErr.Status == 429:
			n.lim.pause(apiErr.RetryAfter)
			n.m.throttled.Inc()
			attempt = 0 // flood control is not a failure of this message
			continue
		case isAPI && apiErr.Status == 403:
			return outBlocked
		case isAPI && apiErr.Status >= 400 && apiErr.Status < 500:
			n.log.Warn("telegram_refused", "details", apiErr.Error())
			return outFailed
		}
		if attempt >= transientTries {
			n.log.Warn("telegram_send_failed", "details", err.Error())
			return outRetry
		}
		if !sleep(ctx, time.Duration(attempt)*n.o.Limits.RetryUnit) {
			return outRetry
		}
	}
}

// sendMail delivers one e-mail, retrying transient failures.
func (n *Notifier) sendMail(ctx context.Context, claim func() error, to, subject, body string) outcome {
	for attempt := 1; ; attempt++ {
		if err := claim(); err != nil {
			n.log.Error("receipt_write_failed", "error", err.Error())
			return outRetry
		}
		err := n.mail.Send(ctx, to, subject, body)
		if err == nil {
			return outSent
		}
		if tpErr, ok := errors.AsType[*textproto.Error](err); ok && tpErr.Code >= 500 {
			n.log.Warn("mail_refused", "details", err.Error())
			return outFailed
		}
		if attempt >= transientTries || ctx.Err() != nil {
			n.log.Warn("mail_send_failed", "details", err.Error())
			return outRetry
		}
		if !sleep(ctx, time.Duration(attempt)*time.Second) {
			return outRetry
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
