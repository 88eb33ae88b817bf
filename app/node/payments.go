package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/usipipo/usipipo/app/bot"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/pay"
)

// startPayments starts the payment service. With --bot-token it also runs
// the Telegram update intake — the poller, or with --bot-webhook the webhook
// (webhook.go); one per token, every update persisted before Telegram is
// told it arrived — and the periodic jobs: Stars reconciliation,
// the QvaPay sweep, invoice expiry and the daily ledger check. The service
// flushes its receipt marks only after all of them have stopped.
func (n *Node) startPayments(ctx context.Context, wg *sync.WaitGroup) error {
	cfg := n.Config
	log := logging.ForService(n.Log, "pay")
	ps, err := pay.New(pay.Options{Store: n.Store, DataKey: n.sec.dataKey, BotToken: cfg.BotToken.Reveal(),
		BotAPIURL: cfg.BotAPIURL, QvaPayURL: cfg.QvaPayURL, AdminChats: cfg.AdminIDs, Logger: log})
	if err != nil {
		return fmt.Errorf("starting payments: %w", err)
	}
	n.Pay = ps
	ps.RegisterMetrics(n.Metrics)
	if err := n.startNotify(ctx, wg); err != nil {
		return err
	}
	// Registered without a bot too: the series exist at zero, so the
	// dashboard and the bot-latency alert work from the first scrape.
	timing := bot.NewTiming(n.Metrics)
	if cfg.BotToken == "" {
		return nil
	}
	h, err := n.startBot(ctx, wg, ps)
	if err != nil {
		return err
	}
	intake := pay.NewIntake(n.Store, timing.Wrap(h), 32, log)
	// The poller's claim on the token (a lock file in DATA) is taken in
	// webhook mode too: one intake per bot token, whichever its mode.
	poller, err := pay.NewPoller(pay.PollerOptions{API: ps.Bot(), Intake: intake, Token: cfg.BotToken.Reveal(),
		LockDir: cfg.Data, Logger: log})
	if err != nil {
		return fmt.Errorf("starting the Telegram poller: %w", err)
	}
	updates := func(ctx context.Context) {
		clearWebhook(ctx, ps.Bot(), log)
		if err := poller.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("poller_stopped", "error", err.Error())
		}
	}
	started := "telegram_poller_started"
	if cfg.BotWebhook {
		if updates, err = n.webhookIntake(intake, ps.Bot(), log); err != nil {
			poller.Close()
			return err
		}
		started = "telegram_webhook_started"
	}
	wg.Go(func() {
		var inner sync.WaitGroup
		inner.Go(func() { updates(ctx) })
		inner.Go(func() { ps.RunJobs(ctx, pay.Schedule{}) })
		inner.Wait()
		poller.Close()
		if err := ps.Close(); err != nil {
			log.Error("payments_close_failed", "error", err.Error())
		}
	})
	log.Info(started)
	return nil
}
