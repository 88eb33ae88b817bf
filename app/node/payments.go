package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/pay"
)

// startPayments starts the payment service. With --bot-token it also runs
// the Telegram update poller (one per token; every update is persisted
// before its offset advances) and the periodic jobs: Stars reconciliation,
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
	if cfg.BotToken == "" {
		return nil
	}
	intake := pay.NewIntake(n.Store, ps, 32, log)
	poller, err := pay.NewPoller(pay.PollerOptions{API: ps.Bot(), Intake: intake, Token: cfg.BotToken.Reveal(),
		LockDir: cfg.Data, Logger: log})
	if err != nil {
		return fmt.Errorf("starting the Telegram poller: %w", err)
	}
	wg.Go(func() {
		var inner sync.WaitGroup
		inner.Go(func() {
			if err := poller.Run(ctx); err != nil {
				log.Error("poller_stopped", "error", err.Error())
			}
		})
		inner.Go(func() { ps.RunJobs(ctx, pay.Schedule{}) })
		inner.Wait()
		poller.Close()
		if err := ps.Close(); err != nil {
			log.Error("payments_close_failed", "error", err.Error())
		}
	})
	log.Info("telegram_poller_started")
	return nil
}
