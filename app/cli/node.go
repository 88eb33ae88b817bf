package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"

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
	pass := ""
	if cfg.PassphraseFile != "" {
		b, err := os.ReadFile(cfg.PassphraseFile)
		if err != nil {
			return fmt.Errorf("reading --passphrase-file: %w", err)
		}
		pass = trimNL(string(b))
	} else if v, ok := env.LookupEnv("USIPIPO_BACKUP_PASSPHRASE"); ok {
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

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

func writeQR(path, text string) error {
	if err := qrcode.WriteFile(text, qrcode.Medium, 512, path); err != nil {
		return fmt.Errorf("writing QR code: %w", err)
	}
	return nil
}
