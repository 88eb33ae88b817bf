package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app/bot"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/app/pay"
)

// startBot starts the Telegram bot on the payment service's update intake
// (the bot never polls) and returns the handler the intake must call: the
// payment service first, then the bot's delivery of what a payment bought.
// It runs before the poller, so no update reaches the intake without the
// bot installed.
func (n *Node) startBot(ctx context.Context, wg *sync.WaitGroup, ps *pay.Service) (pay.Handler, error) {
	cfg := n.Config
	// Buttons are signed under a key derived from the data key, so those
	// already sent stay valid across restarts (and restores).
	m := hmac.New(sha256.New, n.sec.dataKey[:])
	m.Write([]byte("usipipo/bot/callback/v1"))
	b, err := bot.New(bot.Options{App: n.Service, Pay: ps, Token: cfg.BotToken.Reveal(), APIURL: cfg.BotAPIURL,
		SignKey: m.Sum(nil), Admins: cfg.AdminIDs, Status: n.botStatus, Broadcast: n.botBroadcast,
		Logger: logging.ForService(n.Log, "bot")})
	if err != nil {
		return nil, fmt.Errorf("starting the bot: %w", err)
	}
	ps.SetHandler(b)
	wg.Go(func() { b.Run(ctx) })
	n.Log.Info("telegram_bot_started")
	return b.AfterPayments(ps), nil
}

// botStatus is the node's part of the bot's /status: uptime and what the
// data planes have installed.
func (n *Node) botStatus(context.Context) string {
	var parts []string
	if n.recon != nil {
		for plane, count := range n.recon.Installed() {
			parts = append(parts, fmt.Sprintf("%s=%d", plane, count))
		}
	}
	sort.Strings(parts)
	return fmt.Sprintf("node %s · up %s · installed: %s", n.Config.Node, time.Since(n.started).Round(time.Second), strings.Join(parts, " "))
}

// botBroadcast queues an admin's /broadcast with the notifier.
func (n *Node) botBroadcast(ctx context.Context, actor, lang string, activeOnly bool, text string) (string, error) {
	if n.Notify == nil {
		return "", fmt.Errorf("broadcasts need the notifier: %w", notify.ErrNoTelegram)
	}
	return n.Notify.Broadcast(ctx, actor, notify.Segment{Language: lang, ActiveKey: activeOnly}, text)
}
