package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
)

// settings parses and validates the node's settings.
func settings(args []string, env Env) (*config.Config, error) {
	cfg, err := config.Parse(args, env.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		config.Usage(env.Stdout)
		return nil, errUsage
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func serve(ctx context.Context, args []string, env Env) error {
	cfg, err := settings(args, env)
	if err != nil {
		return err
	}
	o := node.Options{Version: env.Version, Logs: env.Stdout}
	if env.Terminal {
		o.Terminal = env.Stderr
	}
	return node.Run(ctx, cfg, o)
}

func initCmd(ctx context.Context, args []string, env Env) error {
	cfg, err := settings(args, env)
	if err != nil {
		return err
	}
	pass, err := node.ReadPassphraseFile(cfg.PassphraseFile)
	if err != nil {
		return err
	}
	if v, ok := env.LookupEnv("USIPIPO_BACKUP_PASSPHRASE"); ok && pass == "" {
		pass = v
	}
	res, err := node.Init(ctx, cfg.Data, pass, rand.Reader)
	if err != nil {
		return err
	}
	// Init's secrets go to the terminal that asked, never to a log.
	node.WriteInitResult(env.Stderr, cfg.Data, res)
	return nil
}

// writeQR writes text's QR code as a PNG. A key's QR code carries its
// private key, so the file is the operator's alone (0600), like an export.
func writeQR(path, text string) error {
	png, err := qrcode.Encode(text, qrcode.Medium, 512)
	if err != nil {
		return fmt.Errorf("encoding QR code: %w", err)
	}
	return writePrivate(path, png)
}
