package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/app/notify"
)

// startNotify starts the notifier — reminders, cap and status notices,
// admin alerts, reports, off-box backups and broadcasts — when there is a
// way to deliver them: a bot token, or an SMTP relay for e-mail alone
// (broadcasts need the bot). It stops with ctx; sends in flight complete.
// Payment alerts go to the admins' chats from app/pay as it settles them,
// so the notifier sends them by e-mail only.
func (n *Node) startNotify(ctx context.Context, wg *sync.WaitGroup) error {
	cfg := n.Config
	if cfg.BotToken == "" && cfg.SMTPHost == "" {
		return nil
	}
	o := notify.Options{Store: n.Store, Service: n.Service, BotToken: cfg.BotToken.Reveal(), BotAPIURL: cfg.BotAPIURL,
		AdminChats: cfg.AdminIDs, AdminEmails: cfg.AdminEmails, Logger: logging.ForService(n.Log, "notify"), Metrics: n.Metrics}
	if cfg.SMTPHost != "" {
		if cfg.SMTPFrom == "" {
			return fmt.Errorf("starting notifications: --smtp-host needs --smtp-from")
		}
		o.Mail = &notify.MailOptions{Host: cfg.SMTPHost, Port: cfg.SMTPPort, User: cfg.SMTPUser,
			Password: cfg.SMTPPassword.Reveal(), From: cfg.SMTPFrom}
	}
	if cfg.BackupEvery > 0 && n.sec.hasPass {
		o.BackupDir = backupsPath(cfg.Data)
	}
	nt, err := notify.New(o)
	if err != nil {
		return fmt.Errorf("starting notifications: %w", err)
	}
	n.Notify = nt
	n.alertSink.Store(nt)
	wg.Go(func() { nt.Run(ctx) })
	n.Log.Info("notifications_started")
	return nil
}
