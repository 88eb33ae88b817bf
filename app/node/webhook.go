package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app/pay"
)

// Telegram's webhook on the public listener (--bot-webhook).
const (
	webhookPath       = "/tg/webhook"
	webhookSecretFile = "tg-webhook.secret" // in DATA, 0600
	webhookSecretLen  = 48
	// secretAlphabet is what setWebhook accepts in secret_token; 64
	// characters, so a random byte's low 6 bits pick one without bias.
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)

// webhookIntake prepares webhook mode: the secret, and the handler that
// startPublic mounts at /tg/webhook. The returned function runs the mode
// until ctx ends: it processes the webhook's updates and registers the
// webhook with Telegram (retrying until Telegram accepts it).
func (n *Node) webhookIntake(in *pay.Intake, api *pay.BotAPI, log *slog.Logger) (func(context.Context), error) {
	if n.pub.ln == nil {
		return nil, errors.New("--bot-webhook needs --public-listen: Telegram posts updates to it")
	}
	secret, err := loadWebhookSecret(n.Config.Data)
	if err != nil {
		return nil, err
	}
	wh, err := in.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("telegram webhook: %w", err)
	}
	n.pub.webhook = wh.Handler
	port := n.publicPort()
	url := webhookURL(n.Config.PublicHost, port)
	switch port {
	case 443, 80, 88, 8443:
	default:
		// A port forwarded from one of these still works, so only warn.
		log.Warn("telegram_webhook_port", "details", fmt.Sprintf("Telegram delivers webhooks only to ports 443, 80, 88 and 8443; the public listener is on %d", port))
	}
	params := map[string]any{"url": url, "secret_token": secret, "allowed_updates": pay.AllowedUpdates(),
		"drop_pending_updates": false}
	reg := &webhookRegistrar{api: api, params: params, log: log, certFile: n.Config.TLSCert, keyFile: n.Config.TLSKey}
	if reg.certFile != "" {
		// Loaded now so that a certificate Telegram needs uploaded is known
		// before the first registration; a bad pair fails the start here.
		if reg.cert, err = loadWebhookCert(reg.certFile, reg.keyFile, nil); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(webhookCertCheckEvery)
			defer t.Stop()
			reg.run(ctx, t.C)
		})
		if err := wh.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("telegram_webhook_stopped", "error", err.Error())
		}
		wg.Wait()
	}, nil
}

// clearWebhook removes a webhook left by an earlier start in webhook mode
// (getUpdates is refused while one is set), keeping the updates Telegram
// holds for the bot. A definitive refusal is logged and polling goes on.
func clearWebhook(ctx context.Context, api *pay.BotAPI, log *slog.Logger) {
	params := map[string]any{"drop_pending_updates": false}
	_ = callUntilDone(ctx, "deleteWebhook", func(ctx context.Context) error { return api.Call(ctx, "deleteWebhook", params, nil) }, false, log)
}

// callUntilDone makes a Bot API call until it succeeds, backing off (as
// Telegram asks, when it does) between attempts. It stops at ctx's end, and
// at a refusal that retrying cannot change unless retryRefusals. call is
// made afresh each attempt (an upload reads its file again).
func callUntilDone(ctx context.Context, method string, call func(context.Context) error, retryRefusals bool, log *slog.Logger) error {
	wait := time.Duration(0)
	for {
		err := call(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		ae, refused := errors.AsType[*pay.APIError](err)
		switch {
		case refused && ae.RetryAfter > 0:
			wait = time.Duration(ae.RetryAfter) * time.Second
		case refused && ae.Status >= 400 && ae.Status < 500 && !retryRefusals:
			log.Error("telegram_"+strings.ToLower(method), "error", err.Error())
			return err
		default:
			wait = min(max(2*wait, 500*time.Millisecond), time.Minute)
		}
		log.Warn("telegram_"+strings.ToLower(method), "error", err.Error(), "details", "retrying in "+wait.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// webhookURL is where Telegram posts updates: the public host, and the
// public listener's port unless it is HTTPS's default.
func webhookURL(host string, port int) string {
	if port == 443 || port == 0 {
		if strings.Contains(host, ":") { // an IPv6 address
			host = "[" + host + "]"
		}
		return "https://" + host + webhookPath
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + webhookPath
}

// loadWebhookSecret returns the webhook's secret_token from DATA, making
// it on first use. It is kept rather than made at each start so that
// updates Telegram already holds, signed with it, are still accepted.
func loadWebhookSecret(data string) (string, error) {
	path := filepath.Join(data, webhookSecretFile)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newWebhookSecret(path)
	}
	if err != nil {
		return "", fmt.Errorf("telegram webhook secret: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("telegram webhook secret %s is open to others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("telegram webhook secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 || pay.CheckWebhookSecret(secret) != nil {
		return "", fmt.Errorf("telegram webhook secret %s is malformed: delete it and a new one is made at the next start", path)
	}
	return secret, nil
}

// newWebhookSecret writes a fresh secret to path (0600, synced; renamed
// into place so a crash never leaves half a secret).
func newWebhookSecret(path string) (string, error) {
	b := make([]byte, webhookSecretLen)
	rand.Read(b)
	for i := range b {
		b[i] = secretAlphabet[b[i]&63]
	}
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a crash between write and rename
	if err := writeSynced(tmp, append(b, '\n')); err != nil {
		return "", fmt.Errorf("telegram webhook secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("telegram webhook secret: %w", err)
	}
	return string(b), nil
}
